"""The issue-18 bench figures stay runnable (tiny models; numbers reported, not asserted)."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch_pruning")

from explorer.bench.byo import BYO_KEYS, byo_figures  # noqa: E402
from explorer.bench.suite import KEYS  # noqa: E402


@pytest.mark.slow
def test_tiny_byo_figures():
    """Every key is produced; shrinking the heads keeps the masked model's perplexity."""
    out = byo_figures(tiny=True)
    assert set(BYO_KEYS) <= set(out) and set(BYO_KEYS) <= set(KEYS)
    assert out["byo_slider_first_ms"] > 0 and out["byo_shrink_speedup_b64"] > 0
    ppl = out["hf_heads_removed_ppl"]
    assert ppl["after"] == pytest.approx(out["hf_heads_masked_ppl"], rel=1e-4)
    assert out["hf_heads_kept"] == [3, 3]  # 25% of 4 heads per layer
    assert out["byo_params_shrunk"] < out["byo_params_dense"]
