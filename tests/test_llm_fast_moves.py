"""The Wanda slider's fast path: ranks computed once give the masks of the sort, count
tables give the counts and histograms of passes over the weights, and the heads view's
one-pass counts equal a count per head slice."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.engine.criteria import criterion_mask, ranking
from explorer.engine.heads import head_sparsity
from explorer.engine.metrics import binned, histogram_edges, layer_stats
from explorer.engine.rankstats import ranked_stats
from explorer.models.gpt import GPT, GPTConfig


def grid(shape: tuple[int, int], seed: int, zeros: float) -> torch.Tensor:
    """Weights on a coarse grid (many ties) with some exact zeros."""
    g = torch.Generator().manual_seed(seed)
    w = torch.round(torch.randn(shape, generator=g) * 4) / 4
    w[torch.rand(shape, generator=g) < zeros] = 0.0
    return w


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 6), groups=st.integers(1, 5),
       criterion=st.sampled_from(["magnitude", "wanda"]),
       pattern=st.sampled_from(["unstructured", "2:4", "4:8"]),
       sparsity=st.floats(0.0, 1.0), zeros=st.sampled_from([0.0, 0.3]),
       seed=st.integers(0, 2 ** 16))
def test_ranks_give_the_sorted_masks_and_tables_the_counted_stats(
        rows: int, groups: int, criterion: str, pattern: str, sparsity: float,
        zeros: float, seed: int) -> None:
    """For any weights (ties and zeros included), Ranking.mask(s) equals criterion_mask
    (stable sort, lower column pruned first among ties), and RankedStats' nonzero count and
    survivor histogram equal layer_stats' count and histc over base * mask."""
    w = grid((rows, groups * 8), seed, zeros)
    g = torch.Generator().manual_seed(seed + 1)
    norms = torch.round(torch.rand(w.shape[1], generator=g) * 3 + 1)  # ties in scores too
    ranked = ranking(criterion, w, pattern, norms)
    mask = ranked.mask(sparsity)
    assert torch.equal(mask, criterion_mask(criterion, w, sparsity, pattern, norms))
    edges = histogram_edges(w)
    base_counts = binned(w, edges)
    table = ranked_stats("w", w, ranked, base_counts, edges)
    if criterion == "magnitude" and pattern == "unstructured":
        assert table is None  # a layer-wide ranking: no table (one row per weight)
        return
    assert table is not None
    fast = table.layer_stats(sparsity)
    slow = layer_stats("w", w * mask, base_counts, edges, 0.0)
    assert fast.nonzero == slow.nonzero and fast.sparsity == slow.sparsity
    assert np.array_equal(fast.hist_counts, slow.hist_counts)
    assert fast.hist_counts.dtype == slow.hist_counts.dtype


def heads_by_slices(model: GPT) -> list[list[float]]:
    """The heads view counted one head slice at a time (the definition)."""
    grid_ = []
    for block in model.blocks:
        attn, hd = block.attn, block.attn.head_dim
        row = [1.0] * model.config.n_heads
        for pos, orig in enumerate(attn.head_ids.tolist()):
            if attn.head_mask[pos] == 0:
                continue
            parts = [getattr(attn, n).weight[pos * hd:(pos + 1) * hd] for n in ("q", "k", "v")]
            parts.append(attn.out.weight[:, pos * hd:(pos + 1) * hd])
            kept = sum(int(torch.count_nonzero(t)) for t in parts)
            row[orig] = 1.0 - kept / sum(t.numel() for t in parts)
        grid_.append(row)
    return grid_


def test_head_sparsity_one_pass_equals_counting_each_head() -> None:
    """With random zeros, a masked head and removed heads, the one-pass counts per head
    equal counting each head's q/k/v rows and out columns."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, context=8, n_layers=3, n_heads=4, d_model=16))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(torch.rand_like(p) > 0.4)
    model.blocks[0].attn.head_mask[2] = 0.0
    model.blocks[1].attn.remove_heads([0, 3])
    model.blocks[2].attn.remove_heads([0, 1, 2, 3])
    got = head_sparsity(model)
    assert got == heads_by_slices(model)
    assert got[0][2] == 1.0 and got[1][0] == got[1][3] == 1.0 and got[2] == [1.0] * 4
    assert 0.2 < got[1][1] < 0.6
