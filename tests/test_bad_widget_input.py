"""Bad input in the widgets, one row per case (the API's and the CLI's: test_bad_input.py).

Each row shows "error: ..." naming the value in the status line (.cx-status), or the widget
clamps the value to its bound, or the control is disabled with its reason on the page
(recorded as such). After every refused row the session is unchanged, bit for bit.
"""

from __future__ import annotations

import html
import re

import pytest
from test_bad_input import NAN, Row, assert_same, state_of

from explorer import Session
from explorer.ui import ExplorerApp


# ----- widgets -------------------------------------------------------------------------
def widget(id_, bad, names, outcome="error", setup=None):
    """`setup` (valid steps, may change the session) runs before the state is recorded."""
    return pytest.param(Row(id_, (setup, bad), names, outcome), id=id_)


def set_values(*pairs):
    def act(app):
        for get, value in pairs:
            obj, attr = get(app)
            setattr(obj, attr, value)
    return act


def click(button):
    def run(app):
        button(app).click()
        app.jobs.wait(60)
    return run


C = lambda name: (lambda app: (getattr(app.c, name), "value"))  # noqa: E731
D = lambda name: (lambda app: (getattr(app.distill, name), "value"))  # noqa: E731
M = lambda name: (lambda app: (getattr(app.model_panel, name), "value"))  # noqa: E731

WIDGET_ROWS = [
    widget("slider nan", set_values((C("slider"), NAN)), "nan"),
    widget("slider 5 clamps", set_values((C("slider"), 5.0)), "0.99", "clamp"),
    widget("slider -1 clamps", set_values((C("slider"), -1.0)), "0.0", "clamp"),
    widget("threshold empties all", set_values((C("slider"), 0.5)), "prunes every weight",
           "warn", setup=set_values((C("mode"), "threshold"))),
    widget("structured + threshold", set_values((C("structured"), True)), "threshold=0",
           setup=set_values((C("mode"), "threshold"))),
    widget("structured + global", set_values((C("structured"), True)), "scope='global'",
           setup=set_values((C("scope"), "global"))),
    # x std is per layer: the app disables the scope and says why (it prunes per layer)
    widget("std + global", set_values((C("scope"), "global")), "per-layer rule",
           "disabled", setup=set_values((C("mode"), "std"))),
    # a threshold becomes the sparsity it gives; threshold 0 gives none
    widget("fine-tune in threshold mode", click(lambda a: a.c.prune_finetune),
           "needs a sparsity above 0", setup=set_values((C("mode"), "threshold"))),
    widget("lr 50 clamps", set_values((C("lr"), 50.0)), "10.0", "clamp"),
    widget("lr -1 clamps", set_values((C("lr"), -1.0)), "1e-06", "clamp"),
    widget("lr nan + Train", click(lambda a: a.c.train), "lr.*nan",
           setup=set_values((C("lr"), NAN))),
    widget("epochs 0 clamps", set_values((C("epochs"), 0)), "1", "clamp"),
    widget("epochs 1e6 clamps", set_values((C("epochs"), 10**6)), "1000", "clamp"),
    widget("steps 0 clamps", set_values((C("steps"), 0)), "1", "clamp"),
    widget("finetune -1 clamps", set_values((C("finetune_epochs"), -1)), "0", "clamp"),
    widget("rewind to unrecorded epoch", click(lambda a: a.c.prune_finetune), "rewind.*got 2",
           setup=set_values((C("slider"), 0.5), (C("rewind"), "2"))),
    widget("undo with nothing", click(lambda a: a.c.undo), "nothing to undo"),
    widget("batch 0 clamps", set_values((M("batch"), 0)), "1", "clamp"),
    widget("model width nan + New", click(lambda a: a.model_panel.new), "width.*nan",
           setup=set_values((M("width"), NAN))),
    widget("model width 100 clamps", set_values((M("width"), 100.0)), "8.0", "clamp"),
    widget("temperature nan", set_values((D("temperature"), NAN)), "temperature.*nan"),
    widget("temperature 500 clamps", set_values((D("temperature"), 500.0)), "20.0", "clamp"),
    widget("student width tiny clamps", set_values((D("width"), 0.001)), "0.05", "clamp"),
    widget("alpha nan + distil", click(lambda a: a.distill.train), "alpha.*nan",
           setup=set_values((D("alpha"), NAN))),
    widget("example 1e6 clamps", set_values((D("example"), 10**6)), "358", "clamp"),
    widget("upload garbage", lambda a: a.model_panel.files.load_bytes(b"not a file", "x.pt"),
           "x.pt.*not a readable session file"),
]


@pytest.fixture(scope="module")
def app() -> ExplorerApp:
    app = ExplorerApp(Session("digits", "mlp", device="cpu"))
    app.distill.open()  # the temperature slider re-softens only once its figure exists
    return app


def defaults(app: ExplorerApp) -> None:
    """Back to a known widget setting (refused rows leave the bad value in the widget)."""
    c = app.c
    app._reconfiguring = True
    try:
        c.structured.value, c.scope.value, c.mode.value = False, "layer", "sparsity"
        c.rewind.value, c.lr.value, c.epochs.value, c.slider.value = "none", 1e-3, 1, 0.0
        app.distill.temperature.value, app.distill.alpha.value = 4.0, 0.7
        app.model_panel.width.value = 1.0
    finally:
        app._reconfiguring = False
    app._configure_slider("sparsity")
    app.run(app.session.reset_pruning)


@pytest.mark.parametrize("row", WIDGET_ROWS)
def test_widget(row: Row, app: ExplorerApp) -> None:
    defaults(app)
    setup, bad = row.action
    if setup is not None:
        setup(app)
    session, before = app.session, state_of(app.session)
    bad(app)
    status = html.unescape(app.c.status.value)
    assert app.session is session
    if row.outcome == "error":
        assert "error:" in status and re.search(row.names, status), status
        assert_same(before, state_of(session))
    elif row.outcome == "warn":
        assert "error:" not in status and "warning" in status and row.names in status, status
    elif row.outcome == "disabled":  # the control is off, with its reason on the page
        assert "error:" not in status and row.names in app.c.why_not.value, status
    else:  # the widget clamped the value to its bound; nothing else went wrong
        widgets = [getattr(w, "value", None) for w in (app.c.slider, app.c.lr, app.c.epochs,
                                                        app.c.steps, app.c.finetune_epochs,
                                                        app.model_panel.batch,
                                                        app.model_panel.width,
                                                        app.distill.temperature,
                                                        app.distill.width,
                                                        app.distill.example)]
        assert float(row.names) in widgets, (row.names, widgets)
        assert "error:" not in status, status
