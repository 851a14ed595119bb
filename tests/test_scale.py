"""Sessions that scale (issue 18): an 11M-parameter model's undo and rewind points stay
within the byte budgets of config.py, the app says what they left out, and its session
file round-trips bit for bit (equal states written once; without undo when too big)."""

from __future__ import annotations

import pytest
import torch

from explorer import config
from explorer.session import persist
from explorer.session.memory import same_bits, storage_bytes
from explorer.session.session import Session

STATE_MIB = 11_140_810 * 4 / 2**20  # the MLP 64 -> 3300 -> 3300 -> 10, float32


@pytest.fixture(scope="module")
def big():
    torch.set_num_threads(2)
    mp = pytest.MonkeyPatch()
    mp.setattr(config, "UNDO_BYTES_MAX", 100 * 2**20)  # two 42.5 MiB steps fit, not three
    mp.setattr(config, "REWIND_BYTES_MAX", 50 * 2**20)  # one rewind point fits
    s = Session("digits", "mlp", hidden=(3300, 3300), device="cpu", pretrained=False)
    bases = [{k: v.clone() for k, v in s.slot.base.items()}]
    for _ in range(3):
        s.train(epochs=1, steps=1)
        bases.append({k: v.clone() for k, v in s.slot.base.items()})
    yield s, bases
    mp.undo()


def same(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(same_bits(a[k], b[k]) and a[k].dtype == b[k].dtype
                                    for k in a)


def test_undo_and_rewind_stay_within_the_byte_budget(big):
    s, bases = big
    assert sum(p.numel() for p in s.model.parameters()) == 11_140_810
    undo = s.slot.undo_stack
    assert len(undo) == 2 and undo.dropped == 1  # the count cap (20) would keep 3
    assert undo.nbytes() <= config.UNDO_BYTES_MAX
    assert sorted(s.slot.rewind_states) == [1] and s.slot.rewind_skipped == [2, 3]
    note = s.slot.kept_note
    assert "Undo keeps the last 2 steps" in note and "1 older one" in note, note
    assert "rewind points kept for epochs 1-1 only" in note and "epochs 2-3 not kept" in note
    with s.trial():  # the kept steps still undo bit for bit
        s.undo()
        assert same(s.slot.base, bases[2])
        s.undo()
        assert same(s.slot.base, bases[1])
        with pytest.raises(ValueError, match="nothing more to undo: 1 older step was dropped "
                                             r"\(42\.5 MiB\) to keep Undo within 100\.0 MiB"):
            s.undo()
        s.reset()  # an empty stack after reset has dropped nothing
        assert s.slot.kept_note.startswith("rewind points") and s.slot.undo_stack.dropped == 0
        with pytest.raises(ValueError, match="no job has changed the base yet"):
            s.undo()


def test_the_file_round_trips_bit_for_bit_and_writes_equal_states_once(big):
    s, _ = big
    data = s.to_bytes()
    states = 4 + len(s.slot.rewind_states) + len(s.slot.undo_stack)  # as tensors in the payload
    assert len(data) < (states - 2) * STATE_MIB * 2**20  # base == live, original == initial
    r = Session.load(data)
    a, b = s.slot, r.slot
    for key in ("base", "original", "initial"):
        assert same(getattr(a, key), getattr(b, key)), key
    assert same(s.model.state_dict(), r.model.state_dict())
    assert [e.job for e in a.undo_stack] == [e.job for e in b.undo_stack]
    assert all(same(x.base, y.base) for x, y in zip(a.undo_stack, b.undo_stack))
    assert all(same(a.rewind_states[k], b.rewind_states[k]) for k in a.rewind_states)


def test_without_undo_the_file_says_what_it_leaves_out(big):
    s, _ = big
    left = persist.left_out_bytes(s)
    assert left == storage_bytes([t for e in s.slot.undo_stack for t in e.base.values()] +
                                 [t for v in s.slot.rewind_states.values() for t in v.values()])
    r = Session.load(s.to_bytes(undo=False))
    assert len(r.slot.undo_stack) == 0 and r.slot.rewind_states == {}
    assert same(r.slot.base, s.slot.base) and same(r.model.state_dict(), s.model.state_dict())


def test_the_app_offers_the_file_without_undo_and_says_so(big, monkeypatch):
    from explorer.ui import files_panel

    s, _ = big
    monkeypatch.setattr(files_panel, "DOWNLOAD_MAX_BYTES", 150 * 2**20)
    data, note = files_panel.session_download(s)
    assert len(data) <= 150 * 2**20 and len(Session.load(data).slot.undo_stack) == 0
    left = persist.left_out_bytes(s) / 2**20
    assert note.startswith(f"undo history and rewind points not saved ({left:.1f} MiB"), note


def test_the_status_line_says_what_undo_dropped(digits_app, monkeypatch):
    from ui_util import settle, status

    monkeypatch.setattr(config, "UNDO_BYTES_MAX", 1)  # every state is over: one step kept
    app = digits_app
    app.c.epochs.value = 1
    assert app.start_training()
    settle(app)
    assert "training done" in status(app) and "dropped" not in status(app)
    assert app.start_training()
    settle(app)
    assert "; Undo keeps the last 1 step (" in status(app), status(app)
    assert "1 older one (" in status(app) and app.session.slot.undo_stack.dropped == 1
