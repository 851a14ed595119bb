"""Session.save / Session.load: a full round trip, and the files that must be refused."""

from __future__ import annotations

import base64
import pickle
import re

import pytest
import torch

from explorer import Session
from explorer.engine.checkpoint import packaged_path
from explorer.session.persist import plain, session_bytes, session_payload
from explorer.ui import ExplorerApp


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def worked() -> Session:
    """A session with every kind of state: masks, undo stack, iterative history, student."""
    torch.manual_seed(0)
    s = Session("digits", "mlp", device="cpu")
    s.prune(sparsity=0.5)
    s.train(epochs=1)
    s.prune_iteratively(0.7, steps=2, finetune_epochs=1)
    s.students.distill(0.25, epochs=1)
    s.students.train_alone(0.25, epochs=1)
    s.select("student")
    s.prune(sparsity=0.4, scope="global")
    return s


def check_slot(a: Session, b: Session, slot: str) -> None:
    a.select(slot)
    b.select(slot)
    assert same_state(a.model.state_dict(), b.model.state_dict())
    assert same_state(a.slot.base, b.slot.base) and same_state(a.slot.original, b.slot.original)
    assert same_state(a.slot.initial, b.slot.initial)
    assert len(a.slot.undo_stack) == len(b.slot.undo_stack)
    for x, y in zip(a.slot.undo_stack, b.slot.undo_stack):  # each Undo: base and masks
        assert same_state(x.base, y.base) and x.prune_config == y.prune_config
        assert (x.masks is None) == (y.masks is None) and x.job == y.job
        assert x.masks is None or same_state(x.masks, y.masks)
    assert (a.slot.masks is None) == (b.slot.masks is None)
    if a.slot.masks is not None:
        assert same_state(a.slot.masks, b.slot.masks)
    assert a.slot.prune_config == b.slot.prune_config and a.slot.config == b.slot.config
    assert sorted(a.slot.rewind_states) == sorted(b.slot.rewind_states)
    x = a.data.val.x
    with torch.no_grad():
        assert torch.equal(a.model(x), b.model(x))
    assert a.refine().to_dict() == b.refine().to_dict()


def test_round_trip_keeps_everything(worked, tmp_path):
    path = tmp_path / "s.pt"
    worked.save(path)
    loaded = Session.load(path)
    assert loaded.selected == worked.selected == "student"
    assert set(loaded.slots.names) == set(worked.slots.names)
    assert loaded.jobs.total_steps == worked.jobs.total_steps
    assert plain(list(loaded.history)) == plain(list(worked.history))
    marks = [h for h in loaded.history if h["kind"] == "prune_step"]
    assert marks and all(h["snapshot"].to_dict() == w["snapshot"].to_dict()
                         for h, w in zip(marks, [h for h in worked.history
                                                 if h["kind"] == "prune_step"]))
    for slot in ("teacher", "student", "student_alone"):
        check_slot(worked, loaded, slot)
    worked.select("student")
    # The loaded copy goes on working the same way: undo, reset.
    loaded.select("teacher")
    worked.select("teacher")
    expected = worked.slot.undo_stack[-1]
    loaded.undo()
    assert same_state(loaded.slot.base, expected.base)
    assert loaded.slot.prune_config == expected.prune_config
    worked.select("student")


def test_bytes_round_trip_and_per_layer_pruning():
    s = Session("digits", "mlp", device="cpu")
    s.pruning.per_layer({s.slot.prunable[0]: 0.8, s.slot.prunable[1]: 0.3})
    again = Session.load(s.to_bytes())
    assert same_state(again.model.state_dict(), s.model.state_dict())
    assert again.slot.prune_config == s.slot.prune_config
    assert same_state(again.slot.masks, s.slot.masks)


class Boom:
    """Unpickling this would run `touch` through os.system."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "explorer-session", "version": 1, "x": Boom(str(marker))}, path)
    with pytest.raises(ValueError, match="could run code"):
        Session.load(path)
    assert not marker.exists()
    raw = tmp_path / "evil.pkl"  # a bare pickle, not a torch zip file
    raw.write_bytes(pickle.dumps(Boom(str(marker))))
    with pytest.raises(ValueError, match="refused|not a readable"):
        Session.load(raw)
    assert not marker.exists()


def test_truncated_file_is_refused(worked, tmp_path):
    data = session_bytes(worked)
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable session file"):
        Session.load(path)
    with pytest.raises(ValueError, match="no such file"):
        Session.load(tmp_path / "missing.pt")


def test_file_of_another_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a session file"):
        Session.load(packaged_path())  # the shipped checkpoint: weights, but no session
    narrow = Session("digits", "mlp", width=0.5, device="cpu", pretrained=False)
    exported = tmp_path / "export.pt"
    narrow.export(exported, kind="zeros")
    with pytest.raises(ValueError, match="not a session file"):
        Session.load(exported)
    payload = session_payload(narrow)
    payload["config"] = {**payload["config"], "width": 1.0}  # weights of the 0.5 model
    forged = tmp_path / "forged.pt"
    torch.save(payload, forged)
    with pytest.raises(ValueError, match="belongs to another model"):
        Session.load(forged)


def test_tensor_data_sessions_refuse_to_save(tmp_path):
    x = torch.randn(40, 6)
    y = torch.arange(40) % 2
    s = Session(train=(x, y), val=(x, y), device="cpu")
    with pytest.raises(ValueError, match="data given as tensors"):
        s.save(tmp_path / "s.pt")
    with pytest.raises(ValueError, match="folder does not exist"):
        Session("digits", "mlp", device="cpu").save(tmp_path / "nope" / "s.pt")


def test_app_save_load_export_use_downloads_and_uploads(tmp_path):
    app = ExplorerApp(Session("digits", "mlp", device="cpu"))
    files = app.model_panel.files
    app.c.slider.value = 0.6
    assert files.offer_session()
    href = re.search(r'href="data:application/octet-stream;base64,([^"]+)"', files.link.value)
    data = base64.b64decode(href.group(1))
    app.c.slider.value = 0.0
    assert "sparsity: 0.0%" in re.sub(r"<[^>]+>", "", app.c.summary.value)
    assert files.load_bytes(data, "explorer-session.pt")
    assert app.session.slot.masks is not None and "60.0%" in app.c.summary.value
    assert not files.load_bytes(data[:1000], "cut.pt")
    assert "error:" in app.c.status.value and "cut.pt" in app.c.status.value
    for kind in ("masked", "zeros", "shrunk"):
        files.kind.value = kind
        assert files.offer_export(), app.c.status.value
        assert f'download="model-{kind}.pt"' in files.link.value


def test_files_from_the_flat_layout_still_load(tmp_path):
    """Before the layered package an undo entry was a bare state (no masks, no job id)."""
    s = Session("digits", "mlp", device="cpu")
    s.prune(sparsity=0.5)
    s.train(epochs=1)
    payload = session_payload(s)
    for slot in payload["slots"].values():
        slot["undo_stack"] = [entry["base"] for entry in slot["undo_stack"]]
    for record in payload["history"]:
        record.pop("job", None)
    path = tmp_path / "old.pt"
    torch.save(payload, path)
    loaded = Session.load(path)
    assert same_state(loaded.slot.base, s.slot.base) and same_state(loaded.slot.masks, s.slot.masks)
    loaded.undo()  # the old entry brings back its base, with no masks to restore
    assert same_state(loaded.slot.base, s.slot.undo_stack[-1].base) and loaded.slot.masks is None
