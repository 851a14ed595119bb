"""The soak benchmark in miniature: everything the app and session keep stays bounded."""

from __future__ import annotations

from explorer import Session
from explorer.bench.soak import limits, run_soak
from explorer.config import HISTORY_MAX, UNDO_MAX


def test_short_soak_keeps_every_history_bounded():
    report = run_soak(moves=60, cycles=UNDO_MAX + 2, seed=1)
    assert report["jobs"] >= UNDO_MAX + 2
    assert report["lengths_end"]["undo_stack"] == UNDO_MAX  # one job per cycle, capped
    for name, length in report["lengths_end"].items():
        assert length <= limits()[name], (name, length)
    assert all(report["bounded"].values()), report


def test_history_drops_its_oldest_records_at_the_cap():
    s = Session("digits", "mlp", device="cpu")
    first = len(s.history)
    for i in range(HISTORY_MAX + 5):
        s.history.append({"kind": "epoch", "epoch": i, "step": i})
    assert len(s.history) == HISTORY_MAX
    assert s.history[-1]["epoch"] == HISTORY_MAX + 4
    assert first < HISTORY_MAX and s.history[0]["epoch"] == 5  # the oldest went first
