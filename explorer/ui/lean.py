"""Import plotly's widget without what only ``Figure.show()`` needs (nbformat) or only its
image helpers need (Pillow).

``plotly.io._renderers`` (imported by ``plotly.basewidget``, so by every FigureWidget)
imports nbformat at module load, only to check its version when a figure is shown through
the notebook mime renderer. nbformat imports jsonschema, which imports rfc3987_syntax,
which builds a lark grammar at import: about 20 MiB and seconds of CPU in every visitor's
kernel, for a renderer the dashboard never uses (a FigureWidget displays itself).

:func:`import_plotly_widget` imports plotly's renderers while nbformat is hidden and then
gives them a stand-in that imports nbformat on first use, so ``fig.show()`` still works
in a notebook; nothing else in the process is affected (``import nbformat`` elsewhere
loads the real module as usual).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

HIDDEN = "nbformat"
# plotly's image helpers import Pillow at load (3 MiB in every kernel); the app draws no image
PIL = "PIL"


class LazyModule:
    """Stands for a module; imports it on first attribute access (truthy, like a module)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


def import_plotly_widget() -> None:
    """Import ``plotly.basewidget`` with nbformat and Pillow loaded lazily (a no-op if plotly's
    renderers or nbformat are already imported: then there is nothing to save, or nothing to
    change)."""
    if "plotly.io._renderers" in sys.modules or HIDDEN in sys.modules:
        return
    from _plotly_utils import optional_imports

    pil = PIL not in sys.modules and importlib.util.find_spec(PIL) is not None
    hidden = (HIDDEN, PIL) if pil else (HIDDEN,)
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # import name -> ImportError
    try:
        import _plotly_utils.data_utils as data_utils
        import plotly.basewidget  # noqa: F401  (imports plotly.io._renderers)
        import plotly.io._renderers as renderers
    finally:
        for name in hidden:
            del sys.modules[name]
            # optional_imports remembers the failure; forget it so later callers load it
            getattr(optional_imports, "_not_importable", set()).discard(name)
    renderers.nbformat = LazyModule(HIDDEN)
    if pil:  # plotly's image helpers (px.imshow) load Pillow when first used
        data_utils.Image = LazyModule(f"{PIL}.Image")
        data_utils.pil_imported = True
