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
import os
from functools import cache
from pathlib import Path

import plotly.graph_objects as go

from ..config import PLOTLY_MODULE_ENV, PLOTLY_VALIDATORS_ENV

BASE_URL_ENV = "VOILA_BASE_URL"  # Voila gives its kernels the base URL the page uses


def _stub(url_path: str) -> str:
    # A blob module has no base URL of its own: resolve the path against the page's.
    return (f"const bundle = await import(new URL({url_path!r}, document.baseURI).href);\n"
            "export default bundle.default;\n")


@cache
def _served_class(url_path: str) -> type[go.FigureWidget]:
    return type("ServedFigureWidget", (go.FigureWidget,), {"_esm": _stub(url_path)})


def figure_widget(*args, **kwargs) -> go.FigureWidget:
    """A plotly FigureWidget; under the room's server, one whose module comes by URL."""
    path = os.environ.get(PLOTLY_MODULE_ENV)
    if not path:
        return go.FigureWidget(*args, **kwargs)
    base = os.environ.get(BASE_URL_ENV) or "/"
    return _served_class(base.rstrip("/") + "/" + path.lstrip("/"))(*args, **kwargs)


def plotly_validators_file() -> Path:
    """plotly's full validator table (a 3.2 MB JSON file read whole by the first figure)."""
    import plotly

    return Path(plotly.__file__).parent / "validators" / "_validators.json"


class UsedValidators(dict):
    """The table's used part; a lookup outside it loads the whole table, once."""

    complete = False

    def get(self, key, default=None):
        if not self.complete and key not in self:
            self.update(json.loads(plotly_validators_file().read_text(encoding="utf-8")))
            self.complete = True
        return super().get(key, default)


def use_served_validators() -> None:
    """In a room's kernel, give plotly the used part of its validator table: the whole table
    becomes about 9 MiB of Python objects in every visitor's kernel; the part the app's
    figures use, about 2.5 MiB. Anywhere else, or before plotly has read its table, nothing
    changes."""
    path = os.environ.get(PLOTLY_VALIDATORS_ENV)
    if not path or not Path(path).is_file():
        return
    from plotly.validator_cache import ValidatorCache

    if getattr(ValidatorCache, "_json_cache", "missing") is None:  # not read yet
        ValidatorCache._json_cache = UsedValidators(
            json.loads(Path(path).read_text(encoding="utf-8")))
