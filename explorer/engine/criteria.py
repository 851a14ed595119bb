"""Calibration-aware pruning criteria as pure functions: N:M masks and Wanda scores.

Masks are boolean, True = kept, the weight's shape. A weight is seen as a matrix
(rows = outputs, columns = inputs; a convolution's filter is flattened to one row).

- N:M (pattern "2:4", "4:8"): in every group of M consecutive inputs of a row exactly N
  are kept, the N with the largest score. 2:4 is what GPU sparse tensor cores accelerate.
- Wanda (Sun et al. 2023): score |W_ij| * ||X_j||_2, the input feature's L2 norm over all
  calibration tokens, compared within each output row (each row keeps the same count).
- Magnitude: score |W_ij|.

Ties: ranks come from a stable ascending sort, so among equal scores the entry with the
lower column index is pruned first (the convention of engine.prune).

A slider move needs no sort: `ranking` sorts once (the scores are fixed per base and
calibration set) and stores each entry's rank; a sparsity is then the comparison
`rank >= k`, which keeps exactly the entries the sort-and-scatter masks keep.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PATTERNS = ("unstructured", "2:4", "4:8")
CRITERIA = ("magnitude", "wanda", "sparsegpt")


def parse_pattern(pattern: str) -> tuple[int, int]:
    """(n, m) of an N:M pattern; (0, 0) for "unstructured". ValueError names the value."""
    if pattern == "unstructured":
        return 0, 0
    parts = pattern.split(":") if isinstance(pattern, str) else []
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or \
            not 0 < int(parts[0]) < int(parts[1]) <= 64:
        raise ValueError(f"pattern must be 'unstructured' or N:M with 0 < N < M <= 64 "
                         f"(the app offers {', '.join(PATTERNS)}); got {pattern!r}")
    return int(parts[0]), int(parts[1])


def pattern_sparsity(pattern: str) -> float | None:
    """The sparsity an N:M pattern implies (1 - N/M); None when unstructured."""
    n, m = parse_pattern(pattern)
    return None if m == 0 else 1.0 - n / m


def as_matrix(weight: torch.Tensor) -> torch.Tensor:
    """(outputs, inputs) view of a Linear or Conv weight."""
    return weight.reshape(weight.shape[0], -1)


def check_groups(name: str, columns: int, m: int) -> None:
    """An N:M pattern needs the input count to be a multiple of M."""
    if m and columns % m:
        raise ValueError(f"{name}: {columns} inputs are not a multiple of {m}; "
                         f"the N:M pattern needs whole groups of {m}")


def nm_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep the n largest scores in every group of m consecutive columns of each row."""
    mat = as_matrix(scores)
    rows, cols = mat.shape
    check_groups("scores", cols, m)
    groups = mat.reshape(rows, cols // m, m)
    order = torch.sort(groups, dim=-1, stable=True).indices  # ascending
    keep = torch.ones_like(groups, dtype=torch.bool)
    keep.scatter_(-1, order[..., : m - n], False)
    return keep.reshape(scores.shape)


def row_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Prune round(sparsity * inputs) of the smallest scores in every output row."""
    mat = as_matrix(scores)
    k = round(sparsity * mat.shape[1])
    keep = torch.ones_like(mat, dtype=torch.bool)
    if k:
        order = torch.sort(mat, dim=1, stable=True).indices
        keep.scatter_(1, order[:, :k], False)
    return keep.reshape(scores.shape)


def layer_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Prune round(sparsity * numel) of the smallest scores over the whole layer."""
    flat = scores.flatten()
    k = round(sparsity * flat.numel())
    keep = torch.ones_like(flat, dtype=torch.bool)
    if k:
        keep[torch.sort(flat, stable=True).indices[:k]] = False
    return keep.reshape(scores.shape)


def wanda_scores(weight: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """|W_ij| * ||X_j||_2 (norms: one per input column of the matrix view)."""
    mat = as_matrix(weight).abs() * norms.reshape(1, -1).to(weight.dtype)
    return mat.reshape(weight.shape)


def ranks_of(scores: torch.Tensor) -> torch.Tensor:
    """Each entry's position in a stable ascending sort along the last dimension (0 =
    pruned first), as int16 when it fits (half the memory of the scores), else int32."""
    size = scores.shape[-1]
    dtype = torch.int16 if size <= torch.iinfo(torch.int16).max else torch.int32
    order = torch.sort(scores, dim=-1, stable=True).indices
    ranks = torch.empty(scores.shape, dtype=dtype, device=scores.device)
    positions = torch.arange(size, dtype=dtype, device=scores.device)
    ranks.scatter_(-1, order, positions.expand(scores.shape))
    return ranks


@dataclass(frozen=True)
class Ranking:
    """One layer's scores ranked once: `mask(sparsity)` is a comparison, no sort.

    `ranks` (the matrix view per row, or the flat layer) or, for N:M, `fixed`: the mask,
    which no sparsity changes.
    """

    shape: torch.Size
    ranks: torch.Tensor | None = None
    fixed: torch.Tensor | None = None

    def mask(self, sparsity: float) -> torch.Tensor:
        if self.fixed is not None:
            return self.fixed.clone()  # the caller owns its mask (it may edit it in place)
        assert self.ranks is not None
        k = round(sparsity * self.ranks.shape[-1])
        return (self.ranks >= k).reshape(self.shape)


def scores_of(criterion: str, weight: torch.Tensor,
              norms: torch.Tensor | None) -> torch.Tensor:
    """|W| (magnitude) or |W| * ||X|| (wanda); ValueError for another criterion."""
    if criterion == "magnitude":
        return weight.detach().abs()
    if criterion == "wanda":
        if norms is None:
            raise ValueError("wanda needs the input-feature norms of calibration data")
        return wanda_scores(weight.detach(), norms)
    raise ValueError(f"criterion must be magnitude or wanda here; got {criterion!r}")


def ranking(criterion: str, weight: torch.Tensor, pattern: str,
            norms: torch.Tensor | None = None) -> Ranking:
    """The Ranking behind criterion_mask: per layer (magnitude), per row (wanda), N:M."""
    n, m = parse_pattern(pattern)
    scores = scores_of(criterion, weight, norms)
    if m:
        return Ranking(weight.shape, fixed=nm_mask(scores, n, m))
    view = scores.flatten() if criterion == "magnitude" else as_matrix(scores)
    return Ranking(weight.shape, ranks=ranks_of(view))


def criterion_mask(criterion: str, weight: torch.Tensor, sparsity: float, pattern: str,
                   norms: torch.Tensor | None = None) -> torch.Tensor:
    """The mask of magnitude (per layer) or Wanda (per row), unstructured or N:M.

    SparseGPT's mask comes with its weight update (engine.sparsegpt), not from here.
    """
    n, m = parse_pattern(pattern)
    scores = scores_of(criterion, weight, norms)
    if m:
        return nm_mask(scores, n, m)
    return layer_mask(scores, sparsity) if criterion == "magnitude" else row_mask(scores,
                                                                                  sparsity)
