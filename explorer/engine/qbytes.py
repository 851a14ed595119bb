"""Stored bytes of quantized weights: dense index layout, the paper's sparse layout,
and Huffman-coded, each counted from real streams (weights only: no activations).

- quantized (dense layout): every weight's index at `bits` bits (zero is a code), plus
  the codebook at fp32 (k-means centroids, or the uniform scales).
- quantized (sparse layout, Deep Compression section 2): the nonzero weights in order,
  each an index of `bits` bits plus the distance from the previous nonzero in
  `rel_bits` bits (5 for fully connected layers, 8 for convolutions, as the paper);
  a gap over 2^rel_bits inserts a filler entry (index 0), as the paper's zero padding.
- Huffman: the cheaper of the two layouts with each index stream Huffman-coded from its
  own frequencies (explorer.engine.huffman), plus the codebook and one byte of code
  length per symbol (what a decoder needs for canonical codes).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import huffman
from .measure import FP32_BYTES
from .quantize import LayerQuant

REL_BITS_FC = 5
REL_BITS_CONV = 8


def rel_bits_for(weight: torch.Tensor) -> int:
    return REL_BITS_CONV if weight.dim() > 2 else REL_BITS_FC


def layer_bytes(weight: torch.Tensor, lq: LayerQuant, bits: int,
                zero_code: int = 0) -> dict[str, int]:
    """Bytes of one quantized layer in each layout (see the module docstring)."""
    numel = weight.numel()
    book = FP32_BYTES * lq.codebook.numel()
    table = lq.n_symbols  # one byte of code length per symbol
    flat = lq.indices.flatten().cpu().numpy()
    dense = math.ceil(numel * bits / 8) + book
    rel = rel_bits_for(weight)
    vals, rels = _sparse(flat, zero_code, rel)
    sparse = math.ceil(len(vals) * (bits + rel) / 8) + book
    huff_dense = huffman.encoded_bytes(flat) + book + table
    huff_sparse = huffman.encoded_bytes(vals) + huffman.encoded_bytes(rels) + book \
        + table + (1 << rel)
    return {"dense_fp32": FP32_BYTES * numel, "quantized": dense, "quantized_sparse": sparse,
            "huffman": min(huff_dense, huff_sparse)}


def _sparse(flat: np.ndarray, zero_code: int, rel_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(value indices, relative distances - 1) of the sparse layout, fillers in."""
    where = np.flatnonzero(flat != zero_code)
    span = 1 << rel_bits
    gaps = np.diff(np.concatenate([[-1], where])).astype(np.int64)
    fillers = (gaps - 1) // span
    reps = fillers + 1
    ends = np.cumsum(reps) - 1
    rels = np.full(int(reps.sum()), span, dtype=np.int64)
    rels[ends] = gaps - fillers * span
    vals = np.full(int(reps.sum()), zero_code, dtype=np.int64)
    vals[ends] = flat[where]
    return vals, rels - 1


def sparse_layout(indices: torch.Tensor, zero_code: int, rel_bits: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The paper's sparse layout of a layer's indices (for tests and decoders)."""
    return _sparse(indices.flatten().cpu().numpy(), zero_code, rel_bits)


def from_sparse(vals: np.ndarray, rels: np.ndarray, numel: int, zero_code: int) -> np.ndarray:
    """Inverse of sparse_layout: the dense index array back."""
    out = np.full(numel, zero_code, dtype=np.int64)
    pos = np.cumsum(rels + 1) - 1
    out[pos] = vals  # fillers write the zero code onto zero positions
    return out
