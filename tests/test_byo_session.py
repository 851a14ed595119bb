"""Your own model and data through the Session: hf:PATH on imagefolder:PATH, and bad input."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("torch_pruning")

from hf_util import digits_folder, saved  # noqa: E402

from explorer import Session  # noqa: E402
from explorer.data.images import load_image_folder  # noqa: E402


@pytest.fixture(scope="module")
def byo(tmp_path_factory):
    """(image folder of digits PNGs, a tiny transformers ResNet for 10 classes)."""
    root = tmp_path_factory.mktemp("byo")
    return digits_folder(root / "digits", per_class=40), saved("resnet", root, 10)


def test_image_folder_reads_every_image_and_splits_by_seed(byo):
    """All 400 PNGs load as 3 x 32 x 32, 60/20/20 by class, standardised on train."""
    data = load_image_folder(f"imagefolder:{byo[0]}", seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (240, 80, 80)
    assert data.image_shape == (3, 32, 32) and data.n_outputs == 10
    assert torch.bincount(data.val.y).tolist() == [8] * 10
    mean = data.train.x.mean(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros(3), atol=1e-3)
    other = load_image_folder(f"imagefolder:{byo[0]}", seed=1)
    assert not torch.equal(other.val.x, data.val.x)


def test_split_folders_are_used_as_given(tmp_path):
    """PATH/train and PATH/val: no re-split; test falls back to val."""
    digits_folder(tmp_path / "train", per_class=5, classes=3)
    digits_folder(tmp_path / "val", per_class=2, classes=3)
    data = load_image_folder(tmp_path)
    assert (len(data.train), len(data.val), len(data.test)) == (15, 6, 6)


def test_hf_resnet_trains_prunes_and_shrinks(byo):
    """Train, prune 50% structurally through the graph, shrink: outputs match the masked."""
    folder, model = byo
    s = Session(f"imagefolder:{folder}", f"hf:{model}", seed=0)
    before = s.snapshot().accuracy
    s.train(epochs=3, lr=3e-3)
    trained = s.snapshot().accuracy
    assert trained > max(before, 0.2)
    snap = s.prune(sparsity=0.5, structured=True)
    assert 0.2 < snap.extra["param_fraction_removed"] < 0.9
    small = s.shrink()
    x = s.data.val.x[:16]
    with torch.no_grad():
        torch.testing.assert_close(small.eval()(x), s.model.eval()(x), atol=1e-4, rtol=1e-4)
    assert sum(p.numel() for p in small.parameters()) < sum(
        p.numel() for p in s.model.parameters())
    s.reset_pruning()  # back to dense: the base and its BatchNorm statistics, bit for bit
    assert s.snapshot().accuracy == pytest.approx(trained)


def fingerprint(s: Session) -> tuple:
    return (s.slot.config["model"], s.slot.config["dataset"],
            {k: v.clone() for k, v in s.model.state_dict().items()})


@pytest.mark.parametrize("case", ["missing", "empty", "one-class", "unreadable", "not-hf"])
def test_bad_input_names_the_path(tmp_path, byo, case):
    """Bad folders raise ValueError naming the path; nothing half-loaded."""
    folder, model = byo
    data, net = f"imagefolder:{folder}", f"hf:{model}"
    if case == "missing":
        data = f"imagefolder:{tmp_path / 'nope'}"
        named = tmp_path / "nope"
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        data, named = f"imagefolder:{tmp_path / 'empty'}", tmp_path / "empty"
    elif case == "one-class":
        digits_folder(tmp_path / "one", per_class=12, classes=1)
        data, named = f"imagefolder:{tmp_path / 'one'}", tmp_path / "one"
    elif case == "unreadable":
        digits_folder(tmp_path / "bad", per_class=5, classes=2)
        named = tmp_path / "bad" / "1" / "broken.png"
        named.write_bytes(b"not an image")
        data = f"imagefolder:{tmp_path / 'bad'}"
    else:
        (tmp_path / "plain").mkdir()
        (tmp_path / "plain" / "weights.bin").write_bytes(b"\0" * 8)
        net, named = f"hf:{tmp_path / 'plain'}", tmp_path / "plain"
    with pytest.raises(ValueError, match=str(named).replace(".", r"\.")):
        Session(data, net)


def test_bad_model_leaves_a_session_unchanged(tmp_path, byo):
    """A failed load of another model does not touch an existing session."""
    folder, model = byo
    s = Session(f"imagefolder:{folder}", f"hf:{model}")
    before = fingerprint(s)
    with pytest.raises(ValueError):
        Session(f"imagefolder:{folder}", f"hf:{tmp_path}")
    after = fingerprint(s)
    assert before[:2] == after[:2]
    assert all(torch.equal(before[2][k], after[2][k]) for k in before[2])


def test_big_model_answers_first_from_a_fixed_subset(byo, monkeypatch):
    """Above FAST_EVAL_MIN_PARAMS a prune evaluates 256 seeded rows (the same each move,
    said in extra); refine() gives the full set, equal to a plain snapshot."""
    import explorer.session.core as core
    import explorer.session.subsets as subsets
    from explorer.engine.train import evaluate
    from explorer.ui.headline import Metric, headline_html

    folder, model = byo
    s = Session(f"imagefolder:{folder}", f"hf:{model}", seed=3)
    assert core.quick_subset(s) is None  # 6k parameters: always the full set
    monkeypatch.setattr(subsets, "FAST_EVAL_MIN_PARAMS", 1)
    monkeypatch.setattr(subsets, "FAST_EVAL_SAMPLES", 50)
    first = s.prune(sparsity=0.3, structured=True)
    assert (first.extra["eval_samples"], first.extra["eval_total"]) == (50, 80)
    rows = core.subset_split(s, "val", 50)
    assert rows.x.shape[0] == 50 and torch.equal(rows.x, core.subset_split(s, "val", 50).x)
    _, acc, _ = evaluate(s.model, rows, "classification")
    assert first.accuracy == pytest.approx(acc)
    full = s.refine()
    assert "eval_samples" not in full.extra
    assert full.accuracy == pytest.approx(evaluate(s.model, s.data.val, "classification")[1])
    text = headline_html(first, Metric("accuracy", True), None, "teacher")
    assert "50 of 80 samples (subset" in text


def test_subset_answer_recalibrates_on_few_then_refine_on_all(byo, monkeypatch):
    """The subset answer re-estimates BatchNorm on FAST_BN_RECALIBRATION_SAMPLES (said in
    extra); refine() redoes it on BN_RECALIBRATION_SAMPLES, so its numbers and statistics
    equal those of a move that never took the fast path."""
    import explorer.session.core as core
    import explorer.session.subsets as subsets
    from explorer.config import FAST_BN_RECALIBRATION_SAMPLES

    folder, model = byo
    slow = Session(f"imagefolder:{folder}", f"hf:{model}", seed=3)
    oracle = slow.prune(sparsity=0.4, structured=True)
    assert oracle.extra["bn_samples"] == core.BN_RECALIBRATION_SAMPLES
    monkeypatch.setattr(subsets, "FAST_EVAL_MIN_PARAMS", 1)
    monkeypatch.setattr(subsets, "FAST_EVAL_SAMPLES", 50)
    s = Session(f"imagefolder:{folder}", f"hf:{model}", seed=3)
    first = s.prune(sparsity=0.4, structured=True)
    assert first.extra["bn_samples"] == FAST_BN_RECALIBRATION_SAMPLES < 240  # train rows
    stats = {k: v for k, v in s.model.state_dict().items() if k.endswith("running_var")}
    ref = {k: v for k, v in slow.model.state_dict().items() if k.endswith("running_var")}
    assert any(not torch.equal(stats[k], ref[k]) for k in ref)  # really fewer samples
    from explorer.ui.headline import Metric, headline_html

    said = headline_html(first, Metric("accuracy", True), None, "teacher")
    assert "(subset, BatchNorm on 64; full set follows)" in said
    full = s.refine()
    assert full.extra["bn_samples"] == core.BN_RECALIBRATION_SAMPLES
    assert full.accuracy == pytest.approx(oracle.accuracy) and full.loss == pytest.approx(
        oracle.loss, rel=1e-5)
    for k, v in slow.model.state_dict().items():
        if k.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(s.model.state_dict()[k], v)
    assert s.reset_pruning().extra.get("bn_samples", 0) == 0


def test_hf_bert_on_token_tensors(tmp_path):
    """A BERT classifier on the user's token tensors: train, prune heads and neurons
    through the graph, shrink; the shrunk model answers as the masked one."""
    folder = saved("bert", tmp_path, 2)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 50, (96, 8), generator=gen)
    labels = (ids[:, 0] > 25).long()  # learnable: the first token decides
    s = Session(model=f"hf:{folder}", train=(ids[:64], labels[:64]),
                val=(ids[64:], labels[64:]))
    s.train(epochs=2, lr=3e-3)
    s.prune(sparsity=0.5, structured=True)
    small = s.shrink()
    x = s.data.val.x
    with torch.no_grad():
        torch.testing.assert_close(small.eval()(x), s.model.eval()(x), atol=1e-4, rtol=1e-4)
    heads = small.get_submodule("inner.bert.encoder.layer.0.attention.self")
    assert heads.num_attention_heads == 2


def test_causal_lm_is_refused_by_name(tmp_path, byo):
    """A GPT-2 folder in an image Session: refused, naming the folder and why."""
    folder = saved("gpt2", tmp_path)
    with pytest.raises(ValueError, match=f"{folder}.*causal language model"):
        Session(f"imagefolder:{byo[0]}", f"hf:{folder}")


def test_save_of_a_zoo_model_on_folder_data_refuses_plainly(tmp_path, byo):
    """A zoo model on an image folder (its shapes come from the folder): the file format
    cannot rebuild it, so save says so and writes nothing; export still works."""
    folder, _ = byo
    s = Session(f"imagefolder:{folder}", "lenet5")
    with pytest.raises(ValueError, match="zoo model on data read from a folder.*export"):
        s.save(tmp_path / "s.pt")
    assert not (tmp_path / "s.pt").exists()
    s.export(tmp_path / "m.pt", kind="masked")  # what does work: the model itself
    assert (tmp_path / "m.pt").stat().st_size > 0
