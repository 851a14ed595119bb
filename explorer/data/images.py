"""Image folders from disk: ``dataset="imagefolder:PATH"``.

Layout: one sub-folder per class (``PATH/cat/*.png``, ``PATH/dog/*.jpg``), split by seed
60/20/20 (stratified, as the built-in sets), or ``PATH/train``, ``PATH/val`` (and optionally
``PATH/test``) each holding the same class folders, used as given. Every image is read with
Pillow, scaled to [0, 1] by its mode's real range (16-bit by 65535, float by its own
range, transparency over white: explorer.data.pixels), resized to ``size x size`` (bilinear;
default 32) as RGB; then each channel is standardised with the mean and standard deviation
of the training split only (what the built-in sets do per pixel), so the numbers a model
sees are stated, not guessed from ImageNet. Anything wrong (missing folder, no class
folders, one class, an unreadable file, an image past config.IMAGE_PIXELS_MAX pixels)
raises one ValueError naming the path; nothing is half-loaded. Without ``PATH/test`` the
validation images double as the test split, and the data set's name says so with the tag
" (test = val)", as data given as tensors does (the tag is ignored when the name is read
back as a path). Folders whose names start with a dot (``.ipynb_checkpoints``, ``.git``)
are not classes: they are skipped with a warning that lists them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from .datasets import TEST_IS_VAL, Dataset, Split, _stratified_indices
from .pixels import read_image

PREFIX = "imagefolder:"
IMAGE_SIZE = 32  # pixels per side after resizing
SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
SPLIT_DIRS = ("train", "val", "test")


def is_image_folder(dataset: object) -> bool:
    return isinstance(dataset, str) and dataset.startswith(PREFIX)


def folder_of(spec: str | Path) -> Path:
    """The folder an ``imagefolder:PATH`` spec (or a data set's name, tag and all) names."""
    text = str(spec)
    text = text[len(PREFIX):] if text.startswith(PREFIX) else text
    text = text[:-len(TEST_IS_VAL)] if text.endswith(TEST_IS_VAL) else text
    return Path(text).expanduser()


def _classes(root: Path) -> list[Path]:
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    hidden = [p.name for p in folders if p.name.startswith(".")]
    if hidden:  # Jupyter leaves .ipynb_checkpoints everywhere: never a class, but say so
        warnings.warn(f"imagefolder: {root}: skipped {len(hidden)} hidden folder(s) "
                      f"{', '.join(hidden[:5])}: names starting with a dot are not classes "
                      "(rename a folder to use it)", UserWarning, stacklevel=2)
    return [p for p in folders if not p.name.startswith(".")]


def _read_classes(root: Path, names: list[str] | None,
                  size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images N x 3 x size x size, labels, class names) of one folder of class folders."""
    folders = _classes(root)
    if not folders:
        raise ValueError(f"imagefolder: {root} has no class sub-folders (expected "
                         "PATH/<class>/<image>, or PATH/train and PATH/val)")
    found = [p.name for p in folders]
    if names is not None and found != names:
        raise ValueError(f"imagefolder: {root} has classes {found}; train has {names}")
    xs, ys = [], []
    for label, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            raise ValueError(f"imagefolder: class folder {folder} holds no images "
                             f"({', '.join(SUFFIXES)})")
        xs += [read_image(f, size) for f in files]
        ys += [label] * len(files)
    return np.stack(xs), np.asarray(ys, dtype=np.int64), found


def load_image_folder(spec: str | Path, seed: int = 0, device: torch.device | str = "cpu",
                      size: int = IMAGE_SIZE) -> Dataset:
    """Load ``imagefolder:PATH`` (or a plain PATH) as a classification Dataset."""
    root = folder_of(spec)
    if not root.is_dir():
        raise ValueError(f"imagefolder: {root} is not a folder")
    split_dirs = {s: root / s for s in SPLIT_DIRS if (root / s).is_dir()}
    if "train" in split_dirs and "val" in split_dirs:
        x, y, names = _read_classes(split_dirs["train"], None, size)
        parts = {"train": (x, y)}
        for s in ("val", "test"):
            if s in split_dirs:
                parts[s] = _read_classes(split_dirs[s], names, size)[:2]
        tag = "" if "test" in parts else TEST_IS_VAL
        parts.setdefault("test", parts["val"])
    else:
        x, y, names = _read_classes(root, None, size)
        idx = _stratified_indices(y, seed, len(y)) if len(y) >= 10 and \
            np.bincount(y).min() >= 3 else None
        if idx is None:
            raise ValueError(f"imagefolder: {root} needs at least 3 images per class and 10 "
                             f"in all to split into train/val/test; got {np.bincount(y)}")
        parts, tag = {s: (x[i], y[i]) for s, i in zip(SPLIT_DIRS, idx)}, ""
    if len(names) < 2:
        raise ValueError(f"imagefolder: {root} has one class ({names[0]!r}); classification "
                         "needs at least two class folders")
    train_x = parts["train"][0]
    mean = train_x.mean(axis=(0, 2, 3), keepdims=True)
    std = train_x.std(axis=(0, 2, 3), keepdims=True)
    std[std == 0] = 1.0  # a constant channel (grey images) carries no information

    def make(s: str) -> Split:
        xs, ys = parts[s]
        return Split(torch.as_tensor((xs - mean) / std, dtype=torch.float32).to(device),
                     torch.as_tensor(ys).to(device))

    shape = (3, size, size)
    return Dataset(f"imagefolder:{root}{tag}", "classification", make("train"), make("val"),
                   make("test"), shape, shape, len(names))
