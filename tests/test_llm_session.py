"""Session.prune with criterion= / pattern= / calibration= on a tiny hf: GPT-2 session
(character ids; gpt-tiny goes the same way, but its snapshots draw a text sample: slow)."""

from __future__ import annotations

import copy
import math
import threading

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
from hf_util import gpt2  # noqa: E402

from explorer import Session  # noqa: E402
from explorer.engine.calibrate import dense_norms  # noqa: E402
from explorer.engine.criteria import criterion_mask  # noqa: E402
from explorer.session.calibrated import helper  # noqa: E402


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Session:  # untrained: masks are what we test
    return Session("pydoc-text", f"hf:{gpt2(tmp_path_factory.mktemp('lm'))}",
                   max_train_windows=64)


def state(s: Session) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in s.model.state_dict().items()}


def test_wanda_slider_masks_from_cached_dense_norms(session: Session) -> None:
    """A Wanda move prunes 50% of every row of every Linear, ranked by |W| times the
    dense model's input norms (measured independently here), computed once and cached."""
    session.prune(sparsity=0.3)  # a masked model first: norms must still be the dense ones
    snap = session.prune(sparsity=0.5, criterion="wanda", calibration=16)
    norms = helper(session)._norms
    batches = helper(session).batches(session, 16)
    dense = copy.deepcopy(session.model)
    dense.load_state_dict(session.slot.base)
    expect = dense_norms(dense, session.slot.prunable, batches)
    for name in session.slot.prunable:
        assert torch.allclose(norms[name], expect[name])
        mask = criterion_mask("wanda", session.slot.base[name], 0.5, "unstructured", expect[name])
        assert torch.equal(session.slot.masks[name], mask)
        w = session.model.get_parameter(name)
        assert torch.equal(w == 0, ~mask | (session.slot.base[name] == 0))
    assert snap.extra["criterion"] == "wanda" and math.isfinite(snap.extra["perplexity"])
    session.prune(sparsity=0.0, criterion="wanda", calibration=16)
    assert helper(session)._norms is norms  # a move is a ranking: no new forward pass
    assert all(torch.equal(session.model.get_parameter(n), session.slot.base[n])
               for n in session.slot.prunable)


def test_wanda_move_stats_from_tables_equal_passes_over_weights(session: Session) -> None:
    """A Wanda move's per-layer counts and histograms (read from the rank tables) equal
    layer_stats over the installed weights, for both patterns and after moving back."""
    from explorer.engine.metrics import layer_stats

    slot = session.slot
    for kwargs in (dict(sparsity=0.7), dict(pattern="2:4"), dict(sparsity=0.0)):
        snap = session.prune(criterion="wanda", calibration=8, **kwargs)
        assert slot.known_stats  # the fast path served this move
        for layer in snap.layers:
            w = session.model.get_parameter(layer.name)
            slow = layer_stats(layer.name, w, slot.base_counts[layer.name],
                               slot.edges[layer.name], 0.0)
            assert layer.nonzero == slow.nonzero, (kwargs, layer.name)
            assert (layer.hist_counts == slow.hist_counts).all(), (kwargs, layer.name)
    with torch.no_grad():  # a change of the weights retires the tables' answer
        session.model.get_parameter(slot.prunable[0]).mul_(0.0)
    assert session.snapshot().layers[0].nonzero == 0
    session.reset_pruning()


def test_nm_magnitude_every_group_and_semi_structured_export(session: Session,
                                                             tmp_path) -> None:
    """2:4 magnitude keeps exactly 2 of every 4 consecutive inputs of every row; the
    semi_structured export lists those weights, and refuses a model that is not 2:4."""
    snap = session.prune(criterion="magnitude", pattern="2:4")
    assert snap.sparsity == pytest.approx(0.5)
    for name in session.slot.prunable:
        groups = session.slot.masks[name].reshape(session.slot.masks[name].shape[0], -1, 4)
        assert bool((groups.sum(-1) == 2).all())
    payload = session.export(tmp_path / "s.pt", kind="semi_structured")
    assert payload["semi_structured"] == session.slot.prunable
    back = torch.load(tmp_path / "s.pt", weights_only=True)
    assert all(torch.equal(back["state_dict"][n], session.model.get_parameter(n))
               for n in session.slot.prunable)
    session.prune(sparsity=0.5)  # unstructured: some group keeps 3 or 4
    with pytest.raises(ValueError, match="not 2:4 sparse"):
        session.export(tmp_path / "u.pt", kind="semi_structured")
    assert not (tmp_path / "u.pt").exists()


def test_sparsegpt_commits_one_undo_away(session: Session) -> None:
    """SparseGPT 4:8 updates survivors (the new base), zeros the pruned exactly, and one
    Undo brings the previous base back bit for bit."""
    before, base = state(session), {k: v.clone() for k, v in session.slot.base.items()}
    depth = len(session.slot.undo_stack)
    events: list = []
    snap = session.pruning.one_shot("sparsegpt", None, "4:8", 16, blocksize=8,
                                  on_event=events.append)
    seen = [p.done for p in events if not p.layer]
    assert seen == list(range(1, len(seen) + 1)) and len(seen) >= 2
    # progress within each layer too: one event per column block of 8, in column order
    # (so a wide layer never goes quiet for its whole Cholesky-and-update pass)
    within: dict[str, list[int]] = {}
    for p in events:
        if p.layer:
            within.setdefault(p.layer, []).append(p.column)
    assert set(within) == set(session.slot.prunable)
    for name, columns in within.items():
        cols = session.model.get_parameter(name).reshape(len(base[name]), -1).shape[1]
        assert columns == [min(c, cols) for c in range(8, cols + 8, 8)], name
    assert len(session.slot.undo_stack) == depth + 1
    changed = False
    for name in session.slot.prunable:
        w, mask = session.model.get_parameter(name), session.slot.masks[name]
        assert bool((w[~mask] == 0).all())
        assert bool((mask.reshape(len(mask), -1, 8).sum(-1) == 4).all())
        changed |= not torch.equal(w[mask], base[name][mask])
        # pruned entries keep their old base values (lowering the slider revives them)
        assert torch.equal(session.slot.base[name][~mask], base[name][~mask])
    assert changed and snap.extra["criterion"] == "sparsegpt"
    session.undo()
    after = state(session)
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_stop_puts_everything_back(session: Session) -> None:
    """Stop after the first block: the model, base, masks and undo stack are as before."""
    session.prune(sparsity=0.2)
    before, masks, depth = state(session), dict(session.slot.masks), len(session.slot.undo_stack)
    stop = threading.Event()
    session.pruning.one_shot("sparsegpt", 0.5, calibration=8, stop=stop,
                           on_event=lambda p: stop.set())
    assert all(torch.equal(v, before[k]) for k, v in state(session).items())
    assert all(torch.equal(session.slot.masks[k], masks[k]) for k in masks)
    assert len(session.slot.undo_stack) == depth


@pytest.mark.parametrize("criterion", ["sparsegpt", "wanda"])
def test_stop_within_a_block_puts_everything_back(session: Session, criterion: str) -> None:
    """Stop set at the first event inside the first block (after a column block of its
    first layer, or after that layer for sequential Wanda) ends the job there: no later
    event, no finished block, and the model, base, masks and undo stack are bit for bit
    as before."""
    session.prune(sparsity=0.2)
    before, base = state(session), {k: v.clone() for k, v in session.slot.base.items()}
    masks, depth = dict(session.slot.masks), len(session.slot.undo_stack)
    stop, events = threading.Event(), []

    def on_event(p) -> None:
        events.append((p.done, p.layer, stop.is_set()))
        if p.layer:  # within a block
            stop.set()

    session.pruning.one_shot(criterion, 0.5, calibration=8, stop=stop, on_event=on_event)
    assert events == [(0, events[0][1], False)] and events[0][1]  # one event, in block 1
    assert all(torch.equal(v, before[k]) for k, v in state(session).items())
    assert all(torch.equal(v, base[k]) for k, v in session.slot.base.items())
    assert all(torch.equal(session.slot.masks[k], masks[k]) for k in masks)
    assert len(session.slot.undo_stack) == depth and not session.jobs.running


BAD = [(dict(sparsity=0.5, criterion="obs"), "'obs'"),
       (dict(sparsity=0.5, pattern="3:4"), "'3:4'"),
       (dict(sparsity=0.3, pattern="2:4"), "sparsity=0.3"),
       (dict(sparsity=0.5, criterion="wanda", calibration=0), "calibration"),
       (dict(threshold=0.1, criterion="wanda"), "sparsity= only")]


def test_bad_values_name_themselves_and_change_nothing(session: Session) -> None:
    """A bad criterion, pattern, sparsity or calibration size raises ValueError naming
    it; the model and masks stay as they were."""
    session.prune(sparsity=0.4)
    before, masks = state(session), dict(session.slot.masks)
    for kwargs, named in BAD:
        with pytest.raises(ValueError, match=named):
            session.prune(**kwargs)
        assert all(torch.equal(v, before[k]) for k, v in state(session).items())
        assert all(torch.equal(session.slot.masks[k], masks[k]) for k in masks)


def test_big_lm_wanda_move_answers_on_a_window_subset_first(session: Session,
                                                            monkeypatch) -> None:
    """Over the size line a Wanda move's perplexity is on LM_FAST_EVAL_WINDOWS fixed
    validation windows (said in the snapshot); refine() gives the full answer, equal to
    a plain snapshot's."""
    from explorer.config import LM_FAST_EVAL_WINDOWS
    from explorer.session import subsets

    monkeypatch.setattr(subsets, "FAST_EVAL_MIN_PARAMS", 0)  # this tiny model counts as big
    first = session.prune(sparsity=0.4, criterion="wanda", calibration=8)
    again = session.prune(sparsity=0.4, criterion="wanda", calibration=8)
    assert first.extra["eval_samples"] == LM_FAST_EVAL_WINDOWS < first.extra["eval_total"]
    assert again.loss == first.loss  # the same windows every move
    full = session.refine()
    assert "eval_samples" not in full.extra
    assert full.loss == pytest.approx(session.snapshot().loss)
    session.reset_pruning()
