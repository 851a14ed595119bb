"""Saving language-model sessions (issue 18): gpt-tiny and an hf: GPT-2 on text round-trip
bit for bit (weights, base, masks from head removal, undo, rewind points, students,
history) with the vocabulary that continuing needs; what cannot be saved is said."""

from __future__ import annotations

import io
import shutil

import pytest
import torch

pytest.importorskip("transformers")
from hf_util import gpt2  # noqa: E402

from explorer.session.memory import same_bits  # noqa: E402
from explorer.session.persist import read_payload  # noqa: E402
from explorer.session.session import Session  # noqa: E402

TINY = dict(layers=2, heads=4, width=0.25, context=32, max_train_windows=256)


def same_state(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return a is b
    return set(a) == set(b) and all(a[k].dtype == b[k].dtype and same_bits(a[k], b[k])
                                    for k in a)


def assert_same_session(s: Session, r: Session) -> None:
    assert type(r.model) is type(s.model) and r.selected == s.selected
    assert r.slot.config == s.slot.config and set(r.slots) == set(s.slots)
    for name, a in s.slots.items():
        b = r.slots[name]
        assert same_state(a.model.state_dict(), b.model.state_dict()), name
        for key in ("base", "original", "initial", "masks"):
            assert same_state(getattr(a, key), getattr(b, key)), (name, key)
        assert len(a.undo_stack) == len(b.undo_stack), name
        for x, y in zip(a.undo_stack, b.undo_stack):
            assert same_state(x.base, y.base) and same_state(x.masks, y.masks)
            assert x.job == y.job and x.prune_config == y.prune_config
        assert sorted(a.rewind_states) == sorted(b.rewind_states)
        assert all(same_state(a.rewind_states[k], b.rewind_states[k]) for k in a.rewind_states)
    assert [h["kind"] for h in r.history] == [h["kind"] for h in s.history]
    assert r.jobs.total_steps == s.jobs.total_steps
    assert r.snapshot().loss == s.snapshot().loss


@pytest.fixture(scope="module")
def tiny() -> Session:
    torch.set_num_threads(2)
    s = Session("pydoc-text", "gpt-tiny", **TINY)
    s.train(epochs=1, steps=3, lr=3e-3)
    s.lm.remove_heads(0.25)  # masks without a pruning setting
    s.train(epochs=1, steps=2, lr=3e-3)  # an undo step that holds them
    s.students.distill(0.5, layers=1, steps=2)  # a GPT student slot
    s.select("teacher")
    return s


def test_gpt_tiny_round_trips_bit_for_bit_and_continues(tiny):
    r = Session.load(tiny.to_bytes())
    assert_same_session(tiny, r)
    assert r.lm.corpus.vocab == tiny.lm.corpus.vocab and r.is_lm
    assert r.lm.sample("def ", 20) == tiny.lm.sample("def ", 20)
    assert r.model.heads_per_layer() == tiny.model.heads_per_layer()
    r.train(epochs=1, steps=1)  # and it trains on
    assert len(r.slot.undo_stack) == len(tiny.slot.undo_stack) + 1


def test_a_file_whose_vocabulary_differs_from_the_corpus_is_refused(tiny):
    payload = read_payload(tiny.to_bytes())
    chars = payload["config"]["lm"]["vocab"]
    swapped = chars[0] + chars[2] + chars[1] + chars[3:]  # same size, other ids
    for config in (payload["config"], payload["slots"]["teacher"]["config"]):
        config["lm"]["vocab"] = swapped
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with pytest.raises(ValueError, match="vocabulary of .* characters; the file's model"):
        Session.load(buffer.getvalue())


def test_a_language_model_on_your_own_text_file_is_refused_plainly(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 200)
    s = Session(str(path), **{**TINY, "layers": 1})
    with pytest.raises(ValueError, match="own text \\('notes.txt'\\).*none of it is written"):
        s.to_bytes()


def test_an_hf_gpt2_session_round_trips_without_its_folder(tmp_path):
    folder = gpt2(tmp_path)
    s = Session("pydoc-text", f"hf:{folder}", max_train_windows=64)
    s.prune(sparsity=0.3)
    s.train(epochs=1, steps=2)
    data = s.to_bytes()
    shutil.rmtree(folder)  # the architecture comes from the file's config
    r = Session.load(data)
    assert_same_session(s, r)
    assert r.objective.headline == "perplexity" and r.data.train.x.shape == s.data.train.x.shape


def test_the_app_saves_and_loads_a_language_model_session(tiny):
    from ui_util import status

    from explorer.ui import ExplorerApp
    from explorer.ui.files_panel import session_download

    app = ExplorerApp(Session("pydoc-text", "gpt-tiny", **TINY))
    try:
        files = app.model_panel.files
        assert files.offer_session() and "session ready" in status(app), status(app)
        data, note = session_download(tiny)
        assert note == "" and files.load_bytes(data, "lm.pt"), status(app)
        assert "loaded lm.pt: gpt-tiny on pydoc-text" in status(app)
        assert same_state(app.session.slots["student"].base, tiny.slots["student"].base)
    finally:
        app.close()
