"""`explorer reproduce llm-pruning`: intervals over calibration seeds, verdicts under the
honest-claims rules, the anchor table beside ours, and a plain refusal without a model."""

from __future__ import annotations

import pytest

from explorer.studies import llm_pruning
from explorer.studies.reproduce import EXPERIMENTS


def fake_seed(shift: float) -> dict:
    """Rows of one seed: SparseGPT clearly below magnitude; Wanda vs SparseGPT a wash."""
    rows = [{"criterion": "dense", "pattern": "dense", "sparsity": 0.0, "perplexity": 20.0}]
    for pattern in llm_pruning.PATTERNS:
        base = {"unstructured": 30.0, "4:8": 35.0, "2:4": 50.0}[pattern]
        for crit, ppl in (("magnitude", base), ("wanda", base - 5 + shift),
                          ("wanda-seq", base - 5 - shift), ("sparsegpt", base - 5 + shift / 2)):
            rows.append({"criterion": crit, "pattern": pattern, "sparsity": 0.5,
                         "perplexity": ppl})
    return {"settings": {"dataset": "pydoc-text"}, "rows": rows}


def test_combine_gives_intervals_and_honest_verdicts() -> None:
    """Means with 95% intervals per setting; "better" only where the interval clears
    zero (criteria vs magnitude), "not shown" where it does not (Wanda vs SparseGPT)."""
    result = llm_pruning.combine([fake_seed(s) for s in (-0.3, 0.1, 0.4)])
    row = next(r for r in result["table"] if r["criterion"] == "wanda"
               and r["pattern"] == "2:4")
    assert row["perplexity_ci95_low"] < row["perplexity"] < row["perplexity_ci95_high"]
    verdicts = {c["claim"]: c["verdict"] for c in result["claims"]}
    assert verdicts["sparsegpt has lower perplexity than magnitude at 2:4"] == "better"
    assert verdicts["wanda has lower perplexity than sparsegpt at unstructured (as in the "
                    "anchor table)"] == "not shown"
    assert all(c["family"] == len(result["claims"]) for c in result["claims"])  # Holm
    text = llm_pruning.format_result(result)
    assert "54.59" in text and "magnitude 2:4 50%" in text and "5.12" in text


def test_registered_and_refuses_without_a_model(tmp_path) -> None:
    """The experiment is one of reproduce's; without a trained model it says how to make
    one instead of failing deep inside."""
    assert EXPERIMENTS["llm-pruning"] is llm_pruning
    with pytest.raises(ValueError, match="train_small_gpt.py"):
        llm_pruning.model_path(str(tmp_path / "none"))
