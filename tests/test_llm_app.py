"""The app's Criterion / Pattern / Calibration controls and the SparseGPT job button, on a
tiny hf: GPT-2 (headless)."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from hf_util import gpt2  # noqa: E402

from explorer import Session  # noqa: E402
from explorer.ui import ExplorerApp  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    session = Session("pydoc-text", f"hf:{gpt2(tmp_path_factory.mktemp('lm'))}",
                      max_train_windows=32, device="cpu")
    app = ExplorerApp(session)
    yield app
    app.jobs.stop()
    app.jobs.wait(60)


def test_criteria_follow_the_controls_and_sparsegpt_is_a_job(app) -> None:
    """Shown for a language model; Wanda and 2:4 apply on change (every group of 4 keeps
    2); the SparseGPT button runs a job that commits (one more Undo entry)."""
    cc = app.c.criteria
    assert cc.box.layout.display == ""
    app.c.slider.value = 0.5
    cc.criterion.value = "wanda"
    assert app.snap.extra["criterion"] == "wanda" and not app.errors.errors
    cc.pattern.value = "2:4"
    assert app.snap.extra["pattern"] == "2:4"
    for name in app.session.slot.prunable:
        groups = app.session.slot.masks[name].reshape(-1, 4)
        assert bool((groups.sum(-1) == 2).all())
    depth = len(app.session.slot.undo_stack)
    assert app.start_sparsegpt()
    assert app.jobs.wait(120)
    assert len(app.session.slot.undo_stack) == depth + 1 and not app.errors.errors
    assert "SparseGPT done" in app.c.status.value


def test_hidden_for_an_image_model(digits_app) -> None:
    """An image classifier shows no language-model criteria row."""
    digits_app.c.slider.value = 0.3
    assert digits_app.c.criteria.box.layout.display == "none"
