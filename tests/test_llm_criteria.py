"""Oracles for the calibration criteria: Wanda by hand, SparseGPT against a naive
optimal-brain-surgeon loop with explicit inverses, exhaustive best masks, N:M groups."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from explorer.engine.calibrate import capture, dense_norms, linear_groups
from explorer.engine.criteria import criterion_mask, nm_mask
from explorer.engine.oneshot import one_shot
from explorer.engine.sparsegpt import reconstruction_error, sparsegpt_prune


def correlated_inputs(tokens: int, cols: int, seed: int) -> torch.Tensor:
    """Calibration inputs with correlated features and unequal scales (as in LMs)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(tokens, cols, generator=g, dtype=torch.float64)
    mix = torch.randn(cols, cols, generator=g, dtype=torch.float64) * 0.2 + torch.eye(
        cols, dtype=torch.float64)
    return z @ mix * torch.linspace(0.2, 3.0, cols, dtype=torch.float64)


def test_wanda_mask_is_the_hand_formula() -> None:
    """Wanda keeps, per output row, the largest |W_ij| * sqrt(sum_t X_tj^2) (ties: the
    lower column is pruned first), with norms captured by a hook on the layer."""
    torch.manual_seed(0)
    layer = nn.Linear(8, 4, bias=False)
    x = torch.randn(3, 5, 8)  # batches x tokens x features
    norms = dense_norms(layer, ["weight"], [x[i] for i in range(3)])["weight"]
    flat = x.reshape(-1, 8)
    by_hand = [math.sqrt(sum(float(flat[t, j]) ** 2 for t in range(len(flat))))
               for j in range(8)]
    assert torch.allclose(norms, torch.tensor(by_hand, dtype=norms.dtype))
    w = layer.weight.detach()
    mask = criterion_mask("wanda", w, 0.5, "unstructured", norms)
    for r in range(4):
        scores = [(abs(float(w[r, j])) * by_hand[j], j) for j in range(8)]
        pruned = {j for _, j in sorted(scores)[:4]}
        assert {j for j in range(8) if not mask[r, j]} == pruned
    # ties: equal scores in a row prune the lower column first
    tied = criterion_mask("wanda", torch.ones(1, 4), 0.5, "unstructured", torch.ones(4))
    assert tied.tolist() == [[False, False, True, True]]


def naive_obs(W: torch.Tensor, H: torch.Tensor, sparsity: float, n: int, m: int,
              block: int, damp: float) -> torch.Tensor:
    """One column at a time: inverse of the trailing H by torch.linalg.inv, then the OBS
    update W[r, i:] -= W[r, i] / Finv[0, 0] * Finv[0, :] for each pruned (r, i)."""
    H = H.clone().double()
    W = W.clone().double()
    H += damp * H.diag().mean() * torch.eye(len(H), dtype=H.dtype)
    rows, cols = W.shape
    pruned = torch.zeros(rows, cols, dtype=torch.bool)
    for i in range(cols):
        Finv = torch.linalg.inv(H[i:, i:])
        if not m and i % block == 0:  # the mask of the next block, from W as it is now
            js = range(i, min(i + block, cols))
            d = torch.tensor([float(torch.linalg.inv(H[j:, j:])[0, 0]) for j in js],
                             dtype=torch.float64)
            scores = (W[:, i:i + len(js)] ** 2 / d).flatten()
            k = round(sparsity * scores.numel())
            sel = torch.zeros(scores.numel(), dtype=torch.bool)
            sel[torch.sort(scores, stable=True).indices[:k]] = True
            pruned[:, i:i + len(js)] = sel.reshape(rows, len(js))
        if m and i % m == 0:
            d = torch.tensor([float(torch.linalg.inv(H[j:, j:])[0, 0])
                              for j in range(i, i + m)], dtype=torch.float64)
            scores = W[:, i:i + m] ** 2 / d
            low = torch.sort(scores, dim=1, stable=True).indices[:, : m - n]
            pruned[:, i:i + m].scatter_(1, low, True)
        for r in range(rows):
            if pruned[r, i]:
                W[r, i:] -= W[r, i] / Finv[0, 0] * Finv[0, :]
    W[pruned] = 0
    return W


@pytest.mark.parametrize("pattern,block", [((0, 0), 4), ((0, 0), 16), ((2, 4), 8),
                                           ((4, 8), 8)])
def test_sparsegpt_blocked_equals_naive_obs(pattern: tuple[int, int], block: int) -> None:
    """The lazy-batch Cholesky form equals the column-by-column OBS loop to 1e-5."""
    n, m = pattern
    X = correlated_inputs(40, 16, seed=1)
    H = X.T @ X
    W = torch.randn(6, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    new, mask = sparsegpt_prune(W, H, 0.5, n, m, blocksize=block, damp=0.01)
    oracle = naive_obs(W, H, 0.5, n, m, block, 0.01)
    assert torch.allclose(new, oracle, atol=1e-5, rtol=0)
    assert torch.equal(mask, oracle != 0)
    assert int((~mask).sum()) == W.numel() // 2


def best_error(W: torch.Tensor, H: torch.Tensor, masks: list[torch.Tensor]) -> list[float]:
    """Per row, the least ||(w - w') X^T||^2 over the kept sets `masks` (w' optimal:
    the pruned part's Schur complement error w_P (H_PP - H_PK H_KK^-1 H_KP) w_P^T)."""
    out = []
    for w in W:
        best = math.inf
        for keep in masks:
            P, K = ~keep, keep
            S = H[P][:, P] - H[P][:, K] @ torch.linalg.solve(H[K][:, K], H[K][:, P])
            best = min(best, float(w[P] @ S @ w[P]))
        out.append(best)
    return out


def row_masks(cols: int, pruned: int) -> list[torch.Tensor]:
    return [torch.tensor([j not in c for j in range(cols)])
            for c in itertools.combinations(range(cols), pruned)]


def test_sparsegpt_near_exhaustive_best_and_beats_magnitude_and_wanda() -> None:
    """On 20 random 4 x 8 layers at 2:4 (all 36 masks per row searched, each with its best
    update): SparseGPT's error is within 2.5x of the best on every layer (it is greedy and
    updates only later columns), and below magnitude's and Wanda's in total and on at
    least 16 of the 20 layers (measured: 19 and 19)."""
    nm = [torch.cat([a, b]) for a in row_masks(4, 2) for b in row_masks(4, 2)]
    totals, wins = [0.0, 0.0, 0.0], [0, 0]
    for seed in range(20):
        X = correlated_inputs(64, 8, seed)
        H = X.T @ X
        W = torch.randn(4, 8, generator=torch.Generator().manual_seed(seed + 10),
                        dtype=torch.float64)
        best = sum(best_error(W, H, nm))
        new, _ = sparsegpt_prune(W, H, 0.5, 2, 4, blocksize=8, damp=0.01)
        err = reconstruction_error(W, new, H)
        mag = reconstruction_error(W, W * criterion_mask("magnitude", W, 0.5, "2:4"), H)
        wanda = reconstruction_error(
            W, W * criterion_mask("wanda", W, 0.5, "2:4", H.diag().sqrt()), H)
        assert best <= err <= 2.5 * best
        totals = [totals[0] + err, totals[1] + mag, totals[2] + wanda]
        wins = [wins[0] + (err < mag), wins[1] + (err < wanda)]
    assert totals[0] < totals[1] and totals[0] < totals[2]
    assert min(wins) >= 16


def test_sparsegpt_unstructured_near_exhaustive_best() -> None:
    """At 50% unstructured on a 3 x 6 layer the error is within 1.5x of the best of all
    C(18, 9) masks (rows are independent: the best per-row errors for each count,
    combined by dynamic programming over how the 9 pruned weights split between rows)."""
    X = correlated_inputs(48, 6, seed=7)
    H = X.T @ X
    W = torch.randn(3, 6, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    per_count = [best_error(W, H, row_masks(6, k)) for k in range(7)]  # [k][row]
    table = {0: 0.0}
    for r in range(3):
        nxt: dict[int, float] = {}
        for t, v in table.items():
            for k in range(7):
                nxt[t + k] = min(nxt.get(t + k, math.inf), v + per_count[k][r])
        table = nxt
    best = table[9]
    new, _ = sparsegpt_prune(W, H, 0.5, blocksize=6, damp=0.01)
    err = reconstruction_error(W, new, H)
    assert best <= err <= 1.5 * best


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 5), groups=st.integers(1, 4),
       nm=st.sampled_from([(2, 4), (4, 8), (1, 4)]),
       criterion=st.sampled_from(["magnitude", "wanda", "sparsegpt"]),
       seed=st.integers(0, 2 ** 16))
def test_nm_masks_keep_exactly_n_per_group(rows: int, groups: int, nm: tuple[int, int],
                                           criterion: str, seed: int) -> None:
    """Every group of M consecutive inputs of every row keeps exactly N weights, for every
    criterion; magnitude and Wanda keep the N largest scores of the group."""
    n, m = nm
    cols = groups * m
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(rows, cols, generator=g, dtype=torch.float64)
    norms = torch.rand(cols, generator=g, dtype=torch.float64) + 0.1
    if criterion == "sparsegpt":
        X = torch.randn(3 * cols, cols, generator=g, dtype=torch.float64)
        new, mask = sparsegpt_prune(W, X.T @ X, 0.0, n, m, blocksize=m * 2)
        assert torch.equal(new == 0, ~mask)
        scores = None
    else:
        mask = criterion_mask(criterion, W, 0.0, f"{n}:{m}", norms)
        scores = W.abs() * (norms if criterion == "wanda" else 1)
    for r in range(rows):
        for gi in range(groups):
            grp = mask[r, gi * m:(gi + 1) * m]
            assert int(grp.sum()) == n
            if scores is not None:
                s = scores[r, gi * m:(gi + 1) * m]
                assert s[grp].min() >= s[~grp].max()


def test_nm_refuses_partial_groups() -> None:
    """A row whose input count is not a multiple of M is refused, naming the count."""
    with pytest.raises(ValueError, match="6 inputs"):
        nm_mask(torch.ones(2, 6), 2, 4)


class TwoBlocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8)) for _ in range(2))
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = x + b(x)
        return self.head(x)


def test_sequential_blocks_see_inputs_of_pruned_blocks() -> None:
    """Block 2's statistics come from the model whose block 1 is already pruned, and the
    head (outside every block) comes last, from the fully pruned model."""
    torch.manual_seed(0)
    model = TwoBlocks()
    names = [n for n, p in model.named_parameters() if n.endswith("weight")]
    assert linear_groups(model, names) == [names[:2], names[2:4], names[4:]]
    batches = [torch.randn(6, 8) for _ in range(2)]
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    dense_stats = capture(model, names[2:4], batches, hessian=False)
    steps = list(one_shot(model, names, batches, "wanda", 0.5, "2:4"))
    assert [s.done for s in steps] == [1, 2, 3]
    # redo by hand: dense model, block 1 masked, then block 2's norms decide its mask
    check = TwoBlocks()
    check.load_state_dict(dense)
    masks = steps[-1].masks
    with torch.no_grad():
        for nm_ in names[:2]:
            dict(check.named_parameters())[nm_].mul_(masks[nm_])
    seen = capture(check, names[2:4], batches, hessian=False)
    for nm_ in names[2:4]:
        assert not torch.allclose(seen[nm_].norms(), dense_stats[nm_].norms())
        expect = criterion_mask("wanda", dense[nm_], 0.5, "2:4", seen[nm_].norms())
        assert torch.equal(masks[nm_], expect)
