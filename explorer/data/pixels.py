"""One image file from disk as 3 x size x size floats in [0, 1], read right or refused.

Pillow opens 16-bit greyscale as "I;16" (or "I") and float TIFFs as "F"; `convert("RGB")`
clips those to 0..255, so a 16-bit gradient comes out all white and a float image all black
(PITFALLS). Each mode is therefore mapped to [0, 1] by its own range:

- 8-bit modes ("1", "L", "P", "RGB", "CMYK", "YCbCr", "LAB", "HSV"): Pillow's RGB
  conversion, / 255.
- With transparency ("RGBA", "LA", "PA", "P" with a transparent colour, premultiplied):
  composited over white first (a transparent background reads as paper, not as whatever
  colour the hidden pixels happen to hold).
- 16-bit ("I;16", "I;16B", ...): / 65535, the format's range, not the image's: two scans
  of one scene stay comparable, and a dark image stays dark.
- 32-bit integer ("I"): / 65535 when every value fits 16 bits (Pillow reads some 16-bit
  files this way), else scaled by the image's own min and max.
- float ("F"): NaN or infinite pixels are refused; values already in [0, 1] are kept (the
  usual convention for float images), anything else is scaled by the image's min and max.
- Anything else (a mode Pillow cannot convert to RGB): refused, naming the file and mode.

The pixel count is read from the header (Image.open decodes nothing) and capped at
config.IMAGE_PIXELS_MAX before any decoding. Every Pillow failure (a decompression bomb, an
unidentified or truncated file) becomes one ValueError naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..config import IMAGE_PIXELS_MAX

SIXTEEN_BIT_MAX = 65535.0
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
PLAIN_MODES = ("1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")


def read_image(path: Path, size: int) -> np.ndarray:
    """`path` as a float32 array 3 x size x size in [0, 1] (see the module notes)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            check_pixels(path, img.size)  # from the header: nothing is decoded yet
            return _pixels(path, img, size)
    except Image.DecompressionBombError as err:  # Pillow's own limit, hit inside open()
        raise ValueError(f"imagefolder: image {path} is refused: {err} (the explorer's cap "
                         f"is {IMAGE_PIXELS_MAX / 1e6:g} megapixels)") from None
    except Exception as err:  # unidentified, truncated, broken chunks: name the file
        if isinstance(err, MemoryError) or str(err).startswith("imagefolder:"):
            raise  # out of memory, or our own refusal (it names the file already)
        raise ValueError(f"imagefolder: cannot read image {path}: "
                         f"{type(err).__name__}: {err}") from None


def check_pixels(path: Path, dims: tuple[int, int]) -> None:
    """Refuse an image of more than IMAGE_PIXELS_MAX pixels, by its header's size."""
    width, height = dims
    if width * height > IMAGE_PIXELS_MAX:
        raise ValueError(
            f"imagefolder: image {path} is {width:,} x {height:,} = "
            f"{width * height / 1e6:.1f} megapixels, past the cap of "
            f"{IMAGE_PIXELS_MAX / 1e6:g} (config.IMAGE_PIXELS_MAX); every image is shrunk "
            "to a few dozen pixels a side, so shrink this one first")


def _pixels(path: Path, img: Any, size: int) -> np.ndarray:
    from PIL import Image

    mode = img.mode
    bilinear = Image.Resampling.BILINEAR
    if mode in ALPHA_MODES or (mode == "P" and "transparency" in img.info):
        # premultiplied grey ("La") has no direct RGBA conversion in Pillow
        rgba = (img.convert("LA") if mode == "La" else img).convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img, mode = Image.alpha_composite(white, rgba), "RGB"
    if mode in PLAIN_MODES:
        rgb = img.convert("RGB").resize((size, size), bilinear)
        return np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0
    if mode.startswith("I;16") or mode in ("I", "F"):
        low, high = _range(path, img, mode)
        grey = np.asarray(img.convert("F").resize((size, size), bilinear), dtype=np.float32)
        scaled = (grey - low) / (high - low) if high > low else np.zeros_like(grey)
        return np.repeat(np.clip(scaled, 0.0, 1.0)[None], 3, axis=0)
    raise ValueError(f"imagefolder: image {path} has mode {mode!r}, which the explorer does "
                     f"not read (it reads {', '.join(PLAIN_MODES + ALPHA_MODES)}, 16-bit "
                     "and float greyscale); save it as RGB or greyscale")


def _range(path: Path, img: Any, mode: str) -> tuple[float, float]:
    """(value read as 0, value read as 1) for a 16-bit, 32-bit integer or float image."""
    if mode.startswith("I;16"):
        return 0.0, SIXTEEN_BIT_MAX  # the format's range: see the module notes
    low, high = img.getextrema()
    if mode == "I":
        return (0.0, SIXTEEN_BIT_MAX) if low >= 0 and high <= SIXTEEN_BIT_MAX else \
            (float(low), float(high))
    values = np.asarray(img, dtype=np.float32)
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"imagefolder: image {path} (float, mode 'F') holds "
                         f"{int((~finite).sum()):,} NaN or infinite pixels")
    low, high = float(values.min()), float(values.max())
    return (0.0, 1.0) if low >= 0.0 and high <= 1.0 else (low, high)
