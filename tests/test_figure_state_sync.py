"""The kernel's side of a page's state request (explorer.ui.served, issue 29): a served
figure answers {"cx": "state?"} with its current traces and layout, whole, then bumps
`_cx_synced`; an edit made after the figure was displayed is in that answer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explorer.config import PLOTLY_MODULE_ENV
from explorer.ui import served
from explorer.ui.guard import UiLock


@pytest.fixture
def fig(monkeypatch):
    monkeypatch.setenv(PLOTLY_MODULE_ENV, "explorer/static/plotly-x/widgetbundle.js")
    fig = served.figure_widget(data=[{"type": "bar", "x": [], "y": [], "customdata": []}])
    fig._repr_mimebundle_()  # displayed: plotly copies the start state a view draws from
    return fig


def _sent(fig, monkeypatch) -> list:
    """What the figure sends: ('state', keys, its _widget_data then) or ('synced', n)."""
    sent: list = []

    def send_state(key=None) -> None:
        keys = (key,) if isinstance(key, str) else tuple(key or ())
        if "_cx_synced" in keys:
            sent.append(("synced", fig._cx_synced))
        if "_widget_data" in keys:
            data = json.dumps(fig._widget_data, default=lambda v: v.tolist())
            sent.append(("state", keys, json.loads(data)))

    monkeypatch.setattr(fig, "send_state", send_state)
    return sent


def test_a_state_request_sends_edits_made_after_display(fig, monkeypatch):
    with fig.batch_update():
        fig.data[0].y = np.array([0.25, 0.5], dtype=np.float32)
        fig.data[0].x = ["a", "b"]
    assert list(fig._widget_data[0].get("x", [])) == []  # the start state is stale
    sent = _sent(fig, monkeypatch)
    served.answer_state(fig, served.STATE_ASK)
    assert sent[-1] == ("synced", 1)  # last: the page hears of it after the state
    whole = [s for s in sent if s[0] == "state" and "_widget_layout" in s[1]]
    assert whole, sent  # sent whole, changed or not
    data = whole[-1][2]
    assert data[0]["x"] == ["a", "b"] and data[0]["y"] == pytest.approx([0.25, 0.5])


def test_other_messages_change_nothing(fig, monkeypatch):
    sent = _sent(fig, monkeypatch)
    for content in ({"cx": "other"}, {}, {"type": "state?"}):
        served.answer_state(fig, content)
    assert sent == [] and fig._cx_synced == 0


def test_the_copy_is_made_under_the_shared_lock(fig, monkeypatch):
    lock = UiLock()
    served.share_lock(fig, lock)
    held: list[bool] = []
    monkeypatch.setattr(served.compat_plotly, "seed_view_state",
                        lambda f: held.append(lock.held()))
    served.answer_state(fig, served.STATE_ASK)
    assert held == [True]


def test_the_page_module_asks_once_listening_and_draws_after():
    stub = served._stub("/explorer/static/plotly-x/widgetbundle.js")
    assert json.dumps(served.STATE_ASK) in stub and "URL_PATH" not in stub
    assert stub.index("inner.initialize(ctx)") < stub.index("model.send(")
    assert "Plotly.react" in stub  # a view drawn before the answer takes it
