"""Issue 31 on language models: per-group uniform 4-bit weights (groups of 32 inputs)
on a tiny hf: GPT-2, with perplexity, composed with Wanda pruning (the LLM criterion of
the large-model issue): the pruned weights stay exactly zero."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
from hf_util import gpt2  # noqa: E402

from explorer import Session  # noqa: E402
from explorer.engine.quantize import _rows  # noqa: E402

BITS, GROUP = 4, 32


def check_groups(s: Session) -> None:
    """Masked weights zero; every group of 32 is integer multiples (|q| <= 7) of its scale."""
    qmax = (1 << (BITS - 1)) - 1
    masks = s.slot.masks or {}
    for name, p in s.slot.params().items():
        if name in masks:
            assert torch.all(p[~masks[name]] == 0), name
        scale = s.slot.quant_layers[name].codebook.reshape(-1, 1)
        q = _rows(p.detach(), GROUP) / torch.where(scale > 0, scale, 1)
        assert torch.allclose(q, q.round(), atol=1e-4) and q.abs().max() <= qmax + 1e-4, name


def test_group4_with_wanda_reports_perplexity(tmp_path):
    s = Session("pydoc-text", f"hf:{gpt2(tmp_path)}", max_train_windows=64)
    dense = s.snapshot().extra["perplexity"]
    s.prune(sparsity=0.5, criterion="wanda", calibration=16)
    pruned = {n: p.detach().clone() for n, p in s.slot.params().items()}
    snap = s.quantize(bits=BITS, scheme="uniform", group_size=GROUP)
    assert snap.extra["quant"]["group_size"] == GROUP
    assert math.isfinite(snap.extra["perplexity"]) and snap.extra["perplexity"] != dense
    assert snap.extra["perplexity"] == pytest.approx(math.exp(snap.loss), rel=1e-4)
    check_groups(s)
    for n, p in s.slot.params().items():  # quantization moved the survivors, no more
        assert torch.equal(p.detach() == 0, (pruned[n] == 0) | (p.detach() == 0))
        assert not torch.equal(p.detach(), pruned[n]), n
    snap = s.prune(sparsity=0.7, criterion="wanda", calibration=16)  # a move keeps it
    assert snap.extra["quant"]["bits"] == BITS and math.isfinite(snap.extra["perplexity"])
    check_groups(s)
    assert snap.sparsity > 0.6
