"""Your own images and text read right or refused by name (issue 26, item 7).

16-bit and float images keep their values, odd modes convert as a person expects, huge and
broken files are refused naming the file before any pixel is decoded, text corpora are
capped before reading, split folders without test/ say "(test = val)", and BatchNorm
re-estimation draws seeded rows rather than the first (class-sorted) ones.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from explorer.data.images import folder_of, load_image_folder
from explorer.data.pixels import read_image


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height grey pixels; its data is a few bytes only
    (decoding it would fail: only a refusal before decoding names the size)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def test_16_bit_png_keeps_its_gradient(tmp_path):
    """A 16-bit grey gradient reads as value / 65535 (convert("RGB") made it all white)."""
    ramp = (np.arange(32 * 32, dtype=np.float64) * 64).reshape(32, 32).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode == "I;16"
    got = read_image(tmp_path / "g.png", 32)
    assert got.shape == (3, 32, 32)
    np.testing.assert_allclose(got[0], ramp / 65535.0, atol=1e-6)
    assert np.array_equal(got[0], got[2])  # grey: three equal channels
    dark = ramp // 16  # the format's range, not the image's: a dark image stays dark
    Image.fromarray(dark).save(tmp_path / "d.png")
    assert read_image(tmp_path / "d.png", 32).max() < 1 / 16


def test_float_tiff_is_scaled_by_its_range(tmp_path):
    """Float pixels in [-3, 5] map to (v + 3) / 8; in [0, 1] they stay; NaN is refused."""
    values = np.linspace(-3.0, 5.0, 16 * 16, dtype=np.float32).reshape(16, 16)
    Image.fromarray(values).save(tmp_path / "f.tif")
    np.testing.assert_allclose(read_image(tmp_path / "f.tif", 16)[1], (values + 3) / 8,
                               atol=1e-6)
    unit = np.linspace(0.2, 0.6, 256, dtype=np.float32).reshape(16, 16)
    Image.fromarray(unit).save(tmp_path / "u.tif")
    np.testing.assert_allclose(read_image(tmp_path / "u.tif", 16)[0], unit, atol=1e-6)
    values[3, 4] = np.nan
    Image.fromarray(values).save(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match=r"nan\.tif.*1 NaN or infinite"):
        read_image(tmp_path / "nan.tif", 16)


@pytest.mark.parametrize("mode", ["P", "LA", "RGBA"])
def test_transparent_pixels_read_as_white(tmp_path, mode):
    """Transparency is composited over white (convert("RGB") kept the hidden colour)."""
    if mode == "P":  # index 0 opaque black on the left, index 1 (transparent red) right
        img = Image.new("P", (8, 8), 1)
        img.putpalette([0, 0, 0, 255, 0, 0])
        img.paste(0, (0, 0, 4, 8))
        img.save(tmp_path / "t.png", transparency=1)
    else:
        rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # transparent black, and the
        rgba.paste((0, 0, 0, 255), (0, 0, 4, 8))  # left half opaque black
        (rgba.convert("LA") if mode == "LA" else rgba).save(tmp_path / "t.png")
    assert Image.open(tmp_path / "t.png").mode == mode
    got = read_image(tmp_path / "t.png", 8)
    assert got[:, :, 5:].min() == 1.0 and got[:, :, :3].max() == 0.0


@pytest.mark.parametrize("mode", ["1", "CMYK", "L"])
def test_plain_modes_convert(tmp_path, mode):
    """Bilevel, CMYK and grey images read as Pillow's RGB conversion / 255."""
    img = Image.new("RGB", (4, 4), (255, 255, 255)).convert(mode)
    suffix = ".tif" if mode == "CMYK" else ".png"
    img.save(tmp_path / f"m{suffix}")
    assert read_image(tmp_path / f"m{suffix}", 4).min() == 1.0


def test_huge_header_is_refused_before_decoding(tmp_path, monkeypatch):
    """100 megapixels (under Pillow's bomb limit) is refused from the header alone, naming
    the file and the size; Pillow's decoder is never called."""
    from PIL import ImageFile

    def no_decoding(self):
        raise AssertionError("decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    path = png_header(tmp_path / "huge.png", 10_000, 10_000)
    with pytest.raises(ValueError, match=r"huge\.png is 10,000 x 10,000 = 100\.0 megapixels"):
        read_image(path, 32)


def test_bomb_and_broken_files_are_named(tmp_path):
    """Pillow's DecompressionBombError, a truncated file and a non-image all name it."""
    bomb = png_header(tmp_path / "bomb.png", 30_000, 30_000)
    with pytest.raises(ValueError, match=r"bomb\.png is refused: .*900000000 pixels"):
        read_image(bomb, 32)
    whole = tmp_path / "whole.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)).save(whole)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"cannot read image .*cut\.png: OSError"):
        read_image(cut, 32)
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ValueError, match=r"text\.png.*UnidentifiedImageError"):
        read_image(tmp_path / "text.png", 32)


def _folder(root: Path, classes: int, per_class: int) -> Path:
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.new("L", (4, 4), 100 * c + i % 50).save(root / f"c{c}" / f"{i}.png")
    return root


def test_train_and_val_without_test_is_tagged(tmp_path):
    """PATH/train + PATH/val: the name ends "(test = val)", as tensor data's does, and the
    tagged name still opens the folder (a saved session passes it back)."""
    _folder(tmp_path / "d" / "train", 2, 4)
    _folder(tmp_path / "d" / "val", 2, 2)
    data = load_image_folder(f"imagefolder:{tmp_path / 'd'}", size=4)
    assert data.name == f"imagefolder:{tmp_path / 'd'} (test = val)"
    assert torch.equal(data.test.x, data.val.x)
    assert folder_of(data.name) == tmp_path / "d"
    assert load_image_folder(data.name, size=4).name == data.name
    _folder(tmp_path / "d" / "test", 2, 2)
    assert not load_image_folder(tmp_path / "d", size=4).name.endswith("(test = val)")


def test_hidden_class_folders_are_skipped_with_a_warning(tmp_path):
    """.ipynb_checkpoints is no class, and the warning lists it."""
    root = _folder(tmp_path / "h", 2, 5)
    (root / ".ipynb_checkpoints").mkdir()
    with pytest.warns(UserWarning, match=r"skipped 1 hidden folder\(s\) \.ipynb_checkpoints"):
        data = load_image_folder(root, size=4)
    assert data.n_outputs == 2
    (root / ".ipynb_checkpoints").rmdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image_folder(root, size=4)


def test_image_over_the_pixel_cap_is_named_in_a_folder(tmp_path, monkeypatch):
    """The cap reads config.IMAGE_PIXELS_MAX; load_image_folder names the file."""
    import explorer.data.pixels as pixels

    monkeypatch.setattr(pixels, "IMAGE_PIXELS_MAX", 15)
    root = _folder(tmp_path / "cap", 2, 5)
    with pytest.raises(ValueError, match=r"c0.0\.png is 4 x 4 = 0\.0 megapixels"):
        load_image_folder(root, size=4)


def test_text_over_the_cap_is_refused_before_reading(tmp_path, monkeypatch):
    """The size comes from os.stat: the file is never opened; the error names the file,
    its size and the cap."""
    import explorer.data.text as text

    monkeypatch.setattr(text, "TEXT_BYTES_MAX", 2**20)
    path = tmp_path / "big.txt"
    path.write_text("abc " * (2**20 // 4 + 64))
    monkeypatch.setattr(Path, "open", lambda *a, **k: pytest.fail("the file was opened"))
    with pytest.raises(ValueError, match=r"big\.txt' is 1\.0 MiB, past the cap of 1 MiB"):
        text.load_text_file(path)


def test_text_newlines_read_as_before(tmp_path):
    """The bounded read keeps read_text's universal newlines."""
    from explorer.data.text import load_text_file

    path = tmp_path / "t.txt"
    body = "line one\r\nline two\rline three\n" * 40
    path.write_bytes(body.encode())
    corpus = load_text_file(path, context=8)
    assert "\r" not in corpus.vocab.chars


def test_calibration_rows_are_seeded_and_mixed():
    """On class-sorted rows the calibration rows span the classes (the first 64 were all
    class 0); the same seed gives the same rows; the fast rows are among the full rows."""
    from explorer.engine.structure import calibration_rows

    labels = torch.arange(10).repeat_interleave(100)  # sorted, as a split folder's train
    fast, full = calibration_rows(1000, 64, 3), calibration_rows(1000, 512, 3)
    assert len(torch.unique(labels[fast])) >= 8
    assert torch.equal(fast, calibration_rows(1000, 64, 3))
    assert not torch.equal(fast, calibration_rows(1000, 64, 4))
    assert set(fast.tolist()) <= set(full.tolist())
    assert torch.equal(calibration_rows(40, 512, 0), torch.arange(40))  # all, in order


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=st.integers(1, 3000), small=st.integers(0, 600), extra=st.integers(0, 600),
       seed=st.integers(0, 2**31 - 1))
def test_calibration_rows_property(n, small, extra, seed):
    """For any size and seed: min(n, samples) distinct rows in 0..n-1, sorted, and the rows
    of fewer samples are among those of more (the fast answer's among the full one's)."""
    from explorer.engine.structure import calibration_rows

    few, many = calibration_rows(n, small, seed), calibration_rows(n, small + extra, seed)
    assert len(few) == min(n, small) and len(torch.unique(few)) == len(few)
    assert bool((few[1:] > few[:-1]).all()) and (len(few) == 0 or 0 <= int(few[0]))
    assert len(few) == 0 or int(few[-1]) < n
    assert set(few.tolist()) <= set(many.tolist())


class Recorder(torch.nn.Module):
    """Identity that keeps what passed while the next BatchNorm was in training mode."""

    def __init__(self, norm: list[torch.nn.Module]):
        super().__init__()
        self.norm, self.seen = norm, []

    def forward(self, x):
        if self.norm[0].training:
            self.seen.append(x.detach().clone())
        return x


@pytest.mark.slow
def test_session_recalibrates_on_seeded_rows_of_a_sorted_folder(tmp_path):
    """A split folder's training rows are sorted by class; a structured prune re-estimates
    BatchNorm on rows of both classes, the same rows on every move."""
    pytest.importorskip("torch_pruning")
    from explorer import Session

    _folder(tmp_path / "s" / "train", 2, 600)  # 1,200 rows: more than 512
    _folder(tmp_path / "s" / "val", 2, 3)
    norm: list[torch.nn.Module] = []
    recorder = Recorder(norm)
    model = torch.nn.Sequential(recorder, torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),
                                torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 2))
    norm.append(model[2])
    s = Session(f"imagefolder:{tmp_path / 's'}", model, seed=5)
    s.prune(sparsity=0.5, structured=True)
    first = [x for x in recorder.seen if len(x) == 512]
    assert first, "no calibration pass seen"
    train = s.data.train
    # every image is one grey level, distinct per class: find each row by its mean
    means = train.x.mean((1, 2, 3))
    rows = (first[-1].mean((1, 2, 3))[:, None] - means[None]).abs().argmin(1)
    assert torch.bincount(train.y[rows], minlength=2).min() > 100
    recorder.seen.clear()
    s.prune(sparsity=0.3, structured=True)
    again = [x for x in recorder.seen if len(x) == 512]
    assert torch.equal(again[-1], first[-1])
