"""`explorer reproduce deep-compression` on tiny budgets (issue 31): the pipeline runs
prune -> share -> tune centroids -> Huffman, and reports intervals and verdicts."""

from __future__ import annotations

import pytest
from tiny_studies import shrink_studies

from explorer.studies import reproduce


@pytest.mark.slow
def test_deep_compression_reports_sizes_errors_and_claims(monkeypatch):
    """Two seeds of LeNet-300-100 on digits with one-epoch budgets: every figure has an
    interval, sizes shrink, and each claim carries a verdict from the shared rules."""
    shrink_studies(monkeypatch.setattr, monkeypatch.setitem)  # digits, one-epoch budgets
    result = reproduce.reproduce("deep-compression", quick=True, seeds=2, workers=0,
                                 models=("lenet300",))
    for one in result["per_seed"]:
        row = one["lenet300"]
        assert row["bytes_huffman"] < row["bytes_quantized"] < row["bytes_dense"]
        assert row["ratio"] > 5 and row["bits"] == 6
    lenet = result["lenet300"]
    assert lenet["final_error"]["ci95_low"] is not None  # two seeds: an interval
    assert len(result["claims"]) == 3
    assert all(c["verdict"] and c["p_holm"] is not None for c in result["claims"])
    text = reproduce.format_result("deep-compression", result)
    assert "1070 -> 27" in text and "lenet300: ratio to dense fp32" in text
