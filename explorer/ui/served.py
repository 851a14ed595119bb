"""plotly's widget module fetched by URL from the room's server, not sent with each figure.

Every plotly FigureWidget carries plotly's widget module, a 5 MB JavaScript bundle, in its
`_esm` trait: a kernel reads it into a Python str (about 10 MB, as it holds characters beyond
Latin-1), sends it through the websocket with each figure, and the page compiles it once per
figure. That is most of what a visitor waits for in a full room, and memory in every kernel.
The room's server (explorer.cli.room) serves the bundle at a path named by plotly's version
and tells its kernels so through PLOTLY_MODULE_ENV; figures made there carry a three-line
module that imports the bundle from that path: the browser fetches it once per page (and
caches it), and the kernel never reads the file. Anywhere else (JupyterLab, plain Voila)
figures are plotly's own.

The module also asks the kernel for the figure's whole state once its listeners exist (issue
29). plotly sends a figure's edits as deltas (`_py2js_restyle`, ...) against the state a
view starts from (its view-state traits, compat.plotly.VIEW_STATE_FIELDS, copied only when
the figure is displayed). An edit made after the display and before the page fetched the
widgets' states (a late background curve; any edit of a preheated kernel) reached no page,
and the page drew the stale start. Now the page's model, once plotly's listeners are
attached, sends ``{"cx": "state?"}``; the kernel copies the figure's current traces and
layout into the start state, sends them and bumps ``_cx_synced``; views drawn from a stale
start are drawn again from it.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import nullcontext
from functools import cache
from pathlib import Path

from ..compat import CompatError
from ..compat import plotly as compat_plotly
from ..config import PLOTLY_MODULE_ENV, PLOTLY_VALIDATORS_ENV

log = logging.getLogger(__name__)

BASE_URL_ENV = "VOILA_BASE_URL"  # Voila gives its kernels the base URL the page uses


STATE_ASK = {"cx": "state?"}

# plotly's module wrapped: its `initialize` attaches the model's delta listeners, then the
# page asks for the whole state. anywidget holds a model's incoming updates until its
# `initialize` has returned, so the answer is not awaited there: it arrives after, replaces
# the view-state traits (compat.plotly.VIEW_STATE_FIELDS), and when that differs from what the
# views started from, each view is drawn again by plotly's own view code (no edit repeats:
# deltas after the answer apply to the new start).
# A blob module has no base URL of its own: the bundle's path resolves against the page's.
STUB = """const bundle = await import(new URL(URL_PATH, document.baseURI).href);
export default () => {
  const inner = bundle.default();
  const views = new Map();  // el -> {ctx, cleanup}
  const draw = (view) => {
    const done = inner.render(view.ctx);
    view.cleanup = typeof done === "function" ? done : () => {};
  };
  return {
    initialize(ctx) {
      inner.initialize(ctx);
      const model = ctx.model;
      const state = () => JSON.stringify(FIELDS.map((name) => model.get(name)));
      const drawnFrom = state();  // what this page's views start from
      model.on("change:_cx_synced", () => {
        // nothing edited before the page read the state (the common case): nothing to do;
        // else each view is drawn anew by plotly's own view code from the current state
        // (a Plotly.react beside plotly's view upset its sizing: a box of height 0)
        if (state() === drawnFrom) return;
        for (const view of views.values()) {
          view.cleanup();
          view.ctx.el.replaceChildren();
          draw(view);
        }
      });
      model.send(ASK);
    },
    render(ctx) {
      const view = {ctx, cleanup: () => {}};
      views.set(ctx.el, view);
      draw(view);
      return () => { views.delete(ctx.el); view.cleanup(); };
    },
  };
};
"""


def _stub(url_path: str) -> str:
    return (STUB.replace("URL_PATH", json.dumps(url_path)).replace("ASK", json.dumps(STATE_ASK))
            .replace("FIELDS", json.dumps(list(compat_plotly.VIEW_STATE_FIELDS))))


def answer_state(fig, content, buffers=None) -> None:
    """The kernel's side of the page's state request: copy the figure's current traces and
    layout into the state a view starts from, send it whole, then bump `_cx_synced` (its
    change reaches the page after the state, in order)."""
    if content != STATE_ASK:
        return
    with getattr(fig, "_cx_state_lock", None) or nullcontext():  # ours (share_lock)
        compat_plotly.send_view_state(fig)
        fig._cx_synced += 1


def share_lock(fig, lock) -> None:
    """Copy `fig`'s traces for a page's state request under `lock` (the app's UI lock,
    held by every figure write: a copy never sees half an edit)."""
    fig._cx_state_lock = lock  # plotly refuses unknown public attributes on a figure


@cache
def _served_class(url_path: str) -> type:
    import plotly.graph_objects as go
    import traitlets

    class ServedFigureWidget(go.FigureWidget):
        _esm = _stub(url_path)
        _cx_synced = traitlets.Int(0).tag(sync=True)  # bumped after each state answer
        _cx_state_lock = None  # share_lock's

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.on_msg(answer_state)

    return ServedFigureWidget


def figure_widget(*args, **kwargs):
    """A plotly FigureWidget; under the room's server, one whose module comes by URL."""
    import plotly.graph_objects as go

    path = os.environ.get(PLOTLY_MODULE_ENV)
    if not path:
        return go.FigureWidget(*args, **kwargs)
    base = os.environ.get(BASE_URL_ENV) or "/"
    return _served_class(base.rstrip("/") + "/" + path.lstrip("/"))(*args, **kwargs)


def prepare_room_kernel() -> None:
    """In a room's kernel only (PLOTLY_MODULE_ENV set by the room's server): import plotly's
    widget without nbformat and Pillow, and give plotly the used part of its validator
    table (the whole becomes about 9 MiB of Python objects in every visitor's kernel; the
    part the app's figures use, about 2.5 MiB). Both patch plotly's internals
    (explorer.compat.plotly); when its canary fails the kernel runs without the patch and
    logs why. Anywhere else nothing changes."""
    if not os.environ.get(PLOTLY_MODULE_ENV):
        return
    try:
        compat_plotly.import_lean()
    except CompatError as err:
        log.warning("plotly loads nbformat and Pillow in this kernel: %s", err)
    path = os.environ.get(PLOTLY_VALIDATORS_ENV)
    if not path or not Path(path).is_file():
        return
    try:
        compat_plotly.use_validators(json.loads(Path(path).read_text(encoding="utf-8")))
    except CompatError as err:
        log.warning("plotly reads its whole validator table in this kernel: %s", err)
