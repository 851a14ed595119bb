"""Session.quantize and the codebook fine-tune job (issue 31): quantization composes
with the pruning mask and survives moves, jobs, Undo and save/load; bad values change
nothing; Train on a quantized model says what it did."""

from __future__ import annotations

import pytest
import torch
from state_util import fingerprint, unchanged

from explorer import Session


@pytest.fixture(scope="module")
def session():
    return Session("digits", "mlp")


def distinct_nonzero(s: Session) -> dict[str, int]:
    return {n: int(torch.unique(p[p != 0]).numel()) for n, p in s.slot.params().items()}


def check_quantized(s: Session, bits: int) -> None:
    """Masked weights exactly zero; at most 2^bits - 1 distinct nonzero values a layer."""
    for name, p in s.slot.params().items():
        if s.slot.masks is not None and name in s.slot.masks:
            assert torch.all(p[~s.slot.masks[name]] == 0)
    assert all(n <= 2 ** bits - 1 for n in distinct_nonzero(s).values())


def test_quantize_composes_with_pruning_and_bits32_removes(session):
    """Prune then quantize; a later pruning move keeps the quantization; bits=32 brings
    back base * mask bit for bit."""
    s = session
    s.prune(sparsity=0.5)
    snap = s.quantize(bits=3)
    check_quantized(s, 3)
    assert snap.extra["quant"]["bits"] == 3
    assert all(len(c) <= 7 and 0.0 not in c for c in snap.extra["quant"]["codebooks"].values())
    s.prune(sparsity=0.8)
    check_quantized(s, 3)
    assert s.snapshot().sparsity == pytest.approx(0.8, abs=1e-3)
    s.quantize(bits=32)
    assert s.slot.quant is None and "quant" not in s.snapshot().extra
    for name, p in s.slot.params().items():
        assert torch.equal(p.detach(), s.slot.base[name] * s.slot.masks[name])
    s.reset_pruning()


def test_measure_reports_quantized_bytes(session):
    """bytes_quantized and bytes_huffman sit beside bytes_dense, smaller, None when off."""
    s = session
    assert s.measure(full=False).extra["bytes_quantized"] is None
    s.prune(sparsity=0.9)
    s.quantize(bits=4)
    extra = s.measure(full=False).extra
    assert extra["bytes_huffman"] < extra["bytes_quantized"] < extra["bytes_dense"]
    assert extra["compression_ratio_huffman"] > 8
    assert extra["quant"]["bits"] == 4 and extra["quant_label"] == "kmeans 4-bit"
    s.quantize(bits=32)
    s.reset_pruning()


BAD_CALLS = [({"bits": 7}, "7"), ({"bits": "4"}, "'4'"), ({"bits": True}, "True"),
             ({"bits": 4, "scheme": "lloyd"}, "'lloyd'"),
             ({"bits": 4, "scheme": "kmeans", "group_size": 64}, "group_size=64"),
             ({"bits": 4, "scheme": "uniform", "group_size": 48}, "48")]


def test_bad_values_refused_state_unchanged(session):
    """ValueError naming the bad value; nothing changes (the setting in force stays)."""
    s = session
    s.quantize(bits=5)
    before = fingerprint(s)
    for call, shown in BAD_CALLS:
        with pytest.raises(ValueError) as caught:
            s.quantize(**call)
        assert shown in str(caught.value), (call, str(caught.value))
    unchanged(before, s)
    assert s.slot.quant.bits == 5
    s.quantize(bits=32)


def test_uniform_groups_on_the_mlp(session):
    """Uniform per group of 32 inputs: each group's nonzero values are multiples of its
    own scale."""
    s = session
    s.quantize(bits=4, scheme="uniform", group_size=32)
    w = s.slot.params()["layers.0.weight"].detach()
    groups = w.reshape(-1, 32)
    scale = groups.abs().amax(1, keepdim=True) / 7
    q = groups / scale.clamp(min=1e-12)
    assert torch.allclose(q, q.round(), atol=1e-4)
    s.quantize(bits=32)


def test_finetune_codebook_commits_and_undoes(session):
    """Centroid fine-tuning changes the centroids, keeps pruned weights zero and at most
    2^bits - 1 values a layer, lands committed, and Undo brings back the weights before."""
    s = session
    s.prune(sparsity=0.7)
    s.quantize(bits=4)
    before = {n: p.detach().clone() for n, p in s.slot.params().items()}
    depth = len(s.slot.undo_stack)
    events = []
    s.jobs.finetune_codebook(steps=4, lr=1e-3, on_event=events.append)
    assert events and len(s.slot.undo_stack) == depth + 1
    check_quantized(s, 4)
    after = {n: p.detach() for n, p in s.slot.params().items()}
    assert any(not torch.equal(before[n], after[n]) for n in before)
    for n in before:  # the pattern of which weights share a value stays
        assert torch.equal(before[n] == 0, after[n] == 0)
    s.prune(sparsity=0.7)  # re-quantizing the committed base finds the same centroids
    assert all(torch.equal(after[n], p.detach()) for n, p in s.slot.params().items())
    s.undo()
    assert all(torch.equal(before[n], p.detach()) for n, p in s.slot.params().items())
    s.quantize(bits=32)
    s.reset_pruning()


def test_finetune_needs_kmeans(session):
    """No k-means quantization in force: ValueError saying so."""
    with pytest.raises(ValueError, match="k-means"):
        session.jobs.finetune_codebook(steps=1)


def test_train_on_quantized_says_so_and_keeps_it(session):
    """Training a quantized model re-quantizes with the same setting and says so."""
    s = session
    s.quantize(bits=3)
    snap = s.train(steps=2, lr=1e-4)
    assert any("re-quantized" in w for w in snap.warnings)
    check_quantized(s, 3)
    s.undo()
    check_quantized(s, 3)
    s.quantize(bits=32)


def test_save_load_keeps_quantization(session, tmp_path):
    """The setting and the quantized weights come back from a saved session."""
    s = session
    s.prune(sparsity=0.6)
    s.quantize(bits=2, scheme="kmeans")
    path = tmp_path / "q.pt"
    s.save(path)
    loaded = Session.load(path)
    assert loaded.slot.quant == s.slot.quant
    for (n, p), q in zip(s.slot.params().items(), loaded.slot.params().values(), strict=True):
        assert torch.equal(p.detach(), q.detach()), n
    loaded.prune(sparsity=0.7)
    check_quantized(loaded, 2)
    s.quantize(bits=32)
    s.reset_pruning()


def test_run_cli_refuses_a_scheme_without_bits(capsys):
    """`explorer run --quant-scheme uniform` without --bits: exit 2 at once, naming it."""
    from explorer.cli.run import main

    assert main(["run", "--quant-scheme", "uniform"]) == 2
    assert "--quant-scheme: 'uniform' needs --bits" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--bits", "7"])
    assert "invalid choice: 7" in capsys.readouterr().err


def test_undo_restores_the_quantization_before_the_job(session, tmp_path):
    """Quantize (3-bit), train, then change the setting: Undo brings back the 3-bit
    setting with the base, as it brings back the masks; a saved undo stack keeps it."""
    s = session
    s.prune(sparsity=0.5)
    s.quantize(bits=3)
    expected = {n: p.detach().clone() for n, p in s.slot.params().items()}
    s.train(steps=2, lr=1e-4)
    s.quantize(bits=6, scheme="uniform")
    path = tmp_path / "u.pt"
    s.save(path)
    for who in (s, Session.load(path)):
        who.undo()
        assert who.slot.quant is not None and (who.slot.quant.bits, who.slot.quant.scheme) \
            == (3, "kmeans")
        check_quantized(who, 3)
        for n, p in who.slot.params().items():
            assert torch.equal(expected[n], p.detach()), n
    s.quantize(bits=32)
    s.reset_pruning()


def test_per_layer_bits_as_deep_compression(tmp_path):
    """bits={"conv": 8, "linear": 5} (Deep Compression's LeNet-5 widths): each layer
    holds at most 2^bits - 1 distinct nonzero values of its own width (the convolutions
    more than 31); a name beats a kind and 32 leaves a layer in float; the setting
    survives a pruning move and save/load; a bad mapping raises ValueError naming the
    bad value, with nothing changed."""
    s = Session("digits", "lenet5")
    s.prune(sparsity=0.5)
    snap = s.quantize(bits={"conv": 8, "linear": 5, "fc3.weight": 32})
    assert snap.extra["quant"]["bits"] == {"conv": 8, "fc3.weight": 32, "linear": 5}
    s.prune(sparsity=0.6)
    distinct = distinct_nonzero(s)
    assert 31 < distinct["conv2.weight"] <= 255 and distinct["conv1.weight"] <= 255
    assert distinct["fc1.weight"] <= 31 and distinct["fc2.weight"] <= 31
    assert distinct["fc3.weight"] > 255  # left in float
    assert set(s.slot.quant_layers) == {"conv1.weight", "conv2.weight", "fc1.weight",
                                        "fc2.weight"}
    assert s.measure(full=False).extra["bytes_huffman"] < s.measure(
        full=False).extra["bytes_dense"]
    s.save(tmp_path / "layers.pt")
    loaded = Session.load(tmp_path / "layers.pt")
    assert loaded.slot.quant == s.slot.quant
    assert distinct_nonzero(loaded) == distinct
    before = fingerprint(s)
    for bits, shown in [({"conv": 8}, "'fc1.weight'"), ({"convv": 8, "linear": 4}, "'convv'"),
                        ({"conv": 7, "linear": 4}, "7"), ({}, "{}"), ({3: 4}, "3")]:
        with pytest.raises(ValueError) as caught:
            s.quantize(bits=bits)
        assert shown in str(caught.value), (bits, str(caught.value))
    unchanged(before, s)
