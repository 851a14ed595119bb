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


def trained_tiny_gpt(path, steps: int = 80) -> None:
    """A 2-layer, 32-wide GPT-2 with a 300-token BPE, trained `steps` seeded AdamW steps
    on pydoc-text (past unigram: pruning it has something to lose)."""
    import torch
    import transformers as T

    from explorer.data.text import load_pydoc_text
    from explorer.models.bpe import train_bpe

    text = load_pydoc_text(context=32).vocab.decode(load_pydoc_text(context=32).train[:60_000])
    tok = train_bpe([text[i:i + 4000] for i in range(0, len(text), 4000)], 300)
    ids = torch.tensor(tok(text, add_special_tokens=False)["input_ids"])
    torch.manual_seed(0)
    model = T.GPT2LMHeadModel(T.GPT2Config(
        vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=64, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        starts = torch.randint(len(ids) - 65, (16,), generator=gen)
        x = torch.stack([ids[s:s + 64] for s in starts])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(path)
    tok.save_pretrained(path)


@pytest.mark.slow
def test_sparsity_curves_on_a_tiny_trained_gpt(tmp_path, monkeypatch) -> None:
    """Quick mode measures 50-80% unstructured curves for magnitude, Wanda and SparseGPT
    (two calibration seeds: Wanda's and SparseGPT's points have intervals, magnitude's does
    not vary); magnitude's perplexity rises with sparsity, and SparseGPT (which updates
    the survivors) stays below magnitude at 70% and 80%. Both curves' tables print."""
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    trained_tiny_gpt(tmp_path / "gpt")
    monkeypatch.setitem(llm_pruning.EVAL_WINDOWS, True, 32)  # a smaller, quicker test set
    monkeypatch.setitem(llm_pruning.CALIBRATION, True, 8)
    per_seed = [llm_pruning.run(quick=True, seed=s, model=str(tmp_path / "gpt"))
                for s in (0, 1)]
    result = llm_pruning.combine(per_seed)
    curves = result["curves"]
    assert set(curves) == {"magnitude", "wanda", "sparsegpt"}
    for crit, points in curves.items():
        assert [p["sparsity"] for p in points] == [0.5, 0.6, 0.7, 0.8], crit
    mag = {p["sparsity"]: p["perplexity"] for p in curves["magnitude"]}
    gpt = {p["sparsity"]: p["perplexity"] for p in curves["sparsegpt"]}
    assert mag[0.5] < mag[0.6] < mag[0.7] < mag[0.8]
    assert gpt[0.7] < mag[0.7] and gpt[0.8] < mag[0.8]
    assert all(p["perplexity_ci95_low"] is not None for p in curves["wanda"])
    assert curves["magnitude"][0]["perplexity_ci95_low"] is None  # no calibration draw
    text = llm_pruning.format_result(result)
    assert "perplexity vs sparsity" in text and "80%" in text
    assert "magnitude unstructured 70%" not in text  # curve points: the second table only
