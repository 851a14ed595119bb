"""SparseGPT (Frantar & Alistarh 2023): prune a layer and update its surviving weights.

For a Linear with weight W (rows x cols) and calibration inputs X (tokens x cols), the
layer-wise objective is ||W X^T - W' X^T||^2 with H = X^T X. Pruning column q of a row
and compensating with the remaining columns F is the optimal-brain-surgeon step

    delta W[r, F] = -(W[r, q] / [H_F^-1]_qq) * [H_F^-1]_q,:

taken column by column left to right, F shrinking as it goes. The inverses of the
trailing sub-matrices H_F are rows of the upper Cholesky factor U of H^-1 (U^T U = H^-1):
row i of U is [H_{i:}^-1]_0,: / sqrt([H_{i:}^-1]_00). So one Cholesky gives every step.
Updates are lazy: within a block of `blocksize` columns they are applied at once, and the
columns after the block get the block's accumulated error in one matrix product.

The mask is chosen at the start of each block (unstructured: the round(s * rows * B)
smallest of w^2 / U_jj^2 over the block) or every M columns (N:M: the M - N smallest of
each row's group), always from the weights as updated so far.
Dampening: H + lambda I with lambda = `damp` x mean(diag H); a dead input (its diagonal
zero: never active in the calibration set) gets H_jj = 1 and its weights zeroed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

DEFAULT_BLOCKSIZE = 128
DEFAULT_DAMP = 0.01


def dampened(hessian: torch.Tensor, weight: torch.Tensor, damp: float
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(H + lambda I with dead inputs fixed, W with dead input columns zeroed), float64."""
    H = hessian.detach().to(torch.float64).clone()
    W = weight.detach().to(torch.float64).clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    lam = damp * torch.mean(torch.diag(H))
    H += lam * torch.eye(len(H), dtype=H.dtype, device=H.device)
    return H, W


def inverse_factor(H: torch.Tensor) -> torch.Tensor:
    """Upper Cholesky factor U of H^-1 (H^-1 = U^T U)."""
    inv = torch.cholesky_inverse(torch.linalg.cholesky(H))
    return torch.linalg.cholesky(inv, upper=True)


def _block_mask(W1: torch.Tensor, d: torch.Tensor, sparsity: float) -> torch.Tensor:
    """True = pruned: the round(s * numel) smallest w^2 / d^2 of the block (stable)."""
    scores = (W1 ** 2 / d.reshape(1, -1) ** 2).flatten()
    k = round(sparsity * scores.numel())
    pruned = torch.zeros_like(scores, dtype=torch.bool)
    pruned[torch.sort(scores, stable=True).indices[:k]] = True
    return pruned.reshape(W1.shape)


def sparsegpt_prune(weight: torch.Tensor, hessian: torch.Tensor, sparsity: float = 0.5,
                    n: int = 0, m: int = 0, blocksize: int = DEFAULT_BLOCKSIZE,
                    damp: float = DEFAULT_DAMP,
                    on_block: Callable[[int, int], None] | None = None,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(updated weight, kept mask) for a (rows x cols) weight and its (cols x cols) H.

    n, m > 0 asks for N:M (sparsity is then 1 - n/m and `sparsity` is ignored).
    `on_block(columns done, cols)` after each column block (a job's progress within a
    layer: a wide layer alone can take seconds).
    Computed in float64, returned in the weight's dtype; pruned entries are exactly zero.
    """
    if blocksize < 1:
        raise ValueError(f"blocksize must be at least 1; got {blocksize}")
    if not 0.0 <= damp <= 1.0:
        raise ValueError(f"damp must be in [0, 1]; got {damp}")
    if m and blocksize % m:
        raise ValueError(f"blocksize {blocksize} must be a multiple of M = {m}")
    H, W = dampened(hessian, weight, damp)
    U = inverse_factor(H)
    rows, cols = W.shape
    pruned = torch.zeros_like(W, dtype=torch.bool)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1, U1 = W[:, i1:i2].clone(), U[i1:i2, i1:i2]
        d = torch.diag(U1)
        P1 = _block_mask(W1, d, sparsity) if not m else torch.zeros_like(W1, dtype=torch.bool)
        Err1 = torch.zeros_like(W1)
        for i in range(i2 - i1):
            if m and i % m == 0:
                scores = W1[:, i:i + m] ** 2 / d[i:i + m].reshape(1, -1) ** 2
                low = torch.sort(scores, dim=1, stable=True).indices[:, : m - n]
                P1.scatter_(1, i + low, True)
            w = W1[:, i]
            q = torch.where(P1[:, i], torch.zeros_like(w), w)
            err = (w - q) / d[i]
            # OBS update of this block's remaining columns (column i itself becomes q)
            W1[:, i:] -= err.unsqueeze(1) @ U1[i, i:].unsqueeze(0)
            W1[:, i] = q
            Err1[:, i] = err
        W[:, i1:i2] = W1
        pruned[:, i1:i2] = P1
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]  # the lazy update of every later column
        if on_block is not None:
            on_block(i2, cols)
    W[pruned] = 0.0
    return W.to(weight.dtype).reshape(weight.shape), ~pruned.reshape(weight.shape)


def reconstruction_error(weight: torch.Tensor, new: torch.Tensor, hessian: torch.Tensor
                         ) -> float:
    """||W X^T - W' X^T||^2 = trace(D H D^T) with D = W - W' and H = X^T X."""
    D = (weight - new).reshape(weight.shape[0], -1).to(torch.float64)
    return float(torch.einsum("ri,ij,rj->", D, hessian.to(torch.float64), D))
