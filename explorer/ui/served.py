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
"""

from __future__ import annotations

import json
import logging
import os
from functools import cache
from pathlib import Path

from ..compat import CompatError
from ..compat import plotly as compat_plotly
from ..config import PLOTLY_MODULE_ENV, PLOTLY_VALIDATORS_ENV

log = logging.getLogger(__name__)

BASE_URL_ENV = "VOILA_BASE_URL"  # Voila gives its kernels the base URL the page uses


def _stub(url_path: str) -> str:
    # A blob module has no base URL of its own: resolve the path against the page's.
    return (f"const bundle = await import(new URL({url_path!r}, document.baseURI).href);\n"
            "export default bundle.default;\n")


@cache
def _served_class(url_path: str) -> type:
    import plotly.graph_objects as go

    return type("ServedFigureWidget", (go.FigureWidget,), {"_esm": _stub(url_path)})


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
