"""plotly internals the app relies on (written against plotly 7.1.0).

- Lean room kernels: ``plotly.io._renderers`` imports nbformat at module load (20 MiB and
  seconds of CPU: jsonschema, rfc3987_syntax's lark grammar) and ``_plotly_utils.data_utils``
  imports Pillow, for a renderer and an image helper the dashboard never uses.
  :func:`import_lean` imports them with both hidden, then gives them stand-ins that import
  the real modules on first use, and makes ``optional_imports`` forget the failure.
- The validator table: ``ValidatorCache._json_cache`` (3.2 MB of JSON, 9 MiB of objects
  per kernel) swapped for its used part (:func:`use_validators`); plotly reads it only by
  ``.get``, which :class:`UsedValidators` overrides.
- FigureWidget fields: ``_restyle_child`` inside a batch (an edit without per-element
  validation), ``_config`` (responsive figures: no public setter on a FigureWidget), and
  ``_widget_layout``/``_widget_data`` seeded from ``_layout_obj._props``/``_data`` before a
  figure held in a box is displayed.

Each is checked by a canary below (CANARIES): the exact attribute, signature or source
line, not an import.
"""

from __future__ import annotations

import ast
import copy
import importlib
import importlib.util
import inspect
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from . import Canary, CompatError, missing

DIST, WRITTEN_FOR = "plotly", "7.1.0"
NBFORMAT, PIL = "nbformat", "PIL"


def _fail(piece: str, detail: str = "") -> NoReturn:
    missing(DIST, WRITTEN_FOR, piece, detail)


def _module_source(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        _fail(f"module {name}")
    return Path(spec.origin).read_text(encoding="utf-8")


def _module_names(name: str) -> set[str]:
    """Names assigned or imported at the top level of module `name` (read, not imported;
    inside `try:` and its handlers too: `try: from PIL import Image` ...)."""
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)

    visit(ast.parse(_module_source(name)).body)
    return names


# ----- lean import ----------------------------------------------------------------------
class LazyModule:
    """Stands for a module; imports it on first attribute access (truthy, like a module)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


def check_lean_import() -> None:
    if "nbformat" not in _module_names("plotly.io._renderers"):
        _fail("plotly.io._renderers.nbformat (a module-level name)")
    if "_not_importable" not in _module_names("_plotly_utils.optional_imports"):
        _fail("_plotly_utils.optional_imports._not_importable")
    names = _module_names("_plotly_utils.data_utils")
    for name in ("Image", "pil_imported"):
        if name not in names:
            _fail(f"_plotly_utils.data_utils.{name}")


def import_lean() -> None:
    """Import ``plotly.basewidget`` with nbformat and Pillow loaded lazily (a no-op if plotly's
    renderers or nbformat are already imported: then there is nothing to save)."""
    if "plotly.io._renderers" in sys.modules or NBFORMAT in sys.modules:
        return
    check_lean_import()
    from _plotly_utils import optional_imports

    pil = PIL not in sys.modules and importlib.util.find_spec(PIL) is not None
    hidden = (NBFORMAT, PIL) if pil else (NBFORMAT,)
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
            optional_imports._not_importable.discard(name)
    renderers.nbformat = LazyModule(NBFORMAT)
    if pil:  # plotly's image helpers (px.imshow) load Pillow when first used
        data_utils.Image = LazyModule(f"{PIL}.Image")
        data_utils.pil_imported = True


# ----- the validator table --------------------------------------------------------------
def full_validators_file() -> Path:
    """plotly's full validator table (a 3.2 MB JSON file read whole by the first figure)."""
    import plotly

    return Path(plotly.__file__).parent / "validators" / "_validators.json"


class UsedValidators(dict):
    """The table's used part; a lookup outside it loads the whole table, once. plotly reads
    the table only through ``.get`` (checked by the canary)."""

    complete = False

    def get(self, key, default=None):
        if not self.complete and key not in self:
            self.update(json.loads(full_validators_file().read_text(encoding="utf-8")))
            self.complete = True
        return super().get(key, default)


def check_validators() -> None:
    from plotly.validator_cache import ValidatorCache

    if "_json_cache" not in vars(ValidatorCache):
        _fail("ValidatorCache._json_cache")
    source = inspect.getsource(ValidatorCache.get_validator)
    if "_json_cache.get(" not in source or "_json_cache[" in source or \
            " in ValidatorCache._json_cache" in source:
        _fail("ValidatorCache.get_validator reading _json_cache only by .get()")
    if not full_validators_file().is_file():
        _fail("plotly/validators/_validators.json")


def use_validators(used: dict) -> bool:
    """Give plotly `used` (part of its table) before it reads the whole; False if too late."""
    from plotly.validator_cache import ValidatorCache

    check_validators()
    if ValidatorCache._json_cache is not None:
        return False
    ValidatorCache._json_cache = UsedValidators(used)
    return True


# ----- FigureWidget fields --------------------------------------------------------------
def _figure_class() -> Any:
    from plotly.basedatatypes import BaseFigure

    return BaseFigure


def check_restyle() -> None:
    base = _figure_class()
    restyle = getattr(base, "_restyle_child", None)
    if restyle is None or list(inspect.signature(restyle).parameters) != \
            ["self", "child", "key_path_str", "val"]:
        _fail("BaseFigure._restyle_child(self, child, key_path_str, val)")
    if "self._in_batch_mode" not in inspect.getsource(base.__init__):
        _fail("BaseFigure._in_batch_mode (set in __init__)")


def restyle_unchecked(fig: Any, index: int, prop: str, value: list) -> None:
    """Set trace `index`'s `prop` without per-element validation inside a batch_update
    (one update message, as a validated edit would); outside a batch, a validated update."""
    if fig._in_batch_mode:
        fig._restyle_child(fig.data[index], prop, value)
    else:
        fig.data[index].update({prop: value})


def check_widget_fields() -> None:
    import plotly.graph_objects as go

    traits = go.FigureWidget.class_traits()
    for name in ("_config", "_widget_layout", "_widget_data"):
        if name not in traits:
            _fail(f"FigureWidget trait {name}")
    fig = go.FigureWidget()
    if not isinstance(getattr(getattr(fig, "_layout_obj", None), "_props", None), dict) or \
            not isinstance(getattr(fig, "_data", None), list):
        _fail("BaseFigure._layout_obj._props and BaseFigure._data")


def make_responsive(fig: Any) -> None:
    """The figure follows its container's size (plotly.js config `responsive`)."""
    fig._config = {**fig._config, "responsive": True}


# the synced traits a FigureWidget view starts from (check_widget_fields watches them)
VIEW_STATE_FIELDS = ("_widget_data", "_widget_layout")


def seed_view_state(fig: Any) -> None:
    """Copy the figure into the state a new view starts from: a FigureWidget in a box is
    never displayed itself, so plotly never does, and an update sent before the page draws
    the figure would be lost."""
    fig._widget_layout = copy.deepcopy(fig._layout_obj._props)
    fig._widget_data = copy.deepcopy(fig._data)


def send_view_state(fig: Any) -> None:
    """seed_view_state, then send that start state to the pages whole (a page that asks
    for it: explorer.ui.served)."""
    seed_view_state(fig)
    fig.send_state(list(VIEW_STATE_FIELDS))


# plotly's widget module, as explorer.ui.served wraps it: the default export makes
# {initialize, render}; `initialize` attaches the model's delta listeners synchronously,
# `render({el})` draws from `_widget_data`/`_widget_layout` and returns the view's cleanup.
WIDGET_EXPORT = re.compile(
    r"=\(\)=>\{let (\w+);return\{initialize\((\w+)\)\{\1=new \w+\(\2\.model,\w+\),"
    r"\1\.initialize\(\)\},render\(\{el:(\w+)\}\)\{let (\w+)=new \w+\(\1,\3\);"
    r"return \4\.perform_render\(\),\(\)=>\4\.remove\(\)\}\}\};"
    r"export\{[^}]*\bas default\}")


def widget_bundle() -> Path:
    """plotly's widget module (package_data/widgetbundle.js), found without importing it."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        _fail("the plotly package")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "widgetbundle.js"  # type: ignore[union-attr]


def check_widget_module(text: str | None = None) -> None:
    """The wrapped module's shape: its default export, `initialize`, `render` (read from the
    end of the bundle, where esbuild puts the module's own code)."""
    if text is None:
        path = widget_bundle()
        if not path.is_file():
            _fail("plotly/package_data/widgetbundle.js")
        text = path.read_text(encoding="utf-8", errors="replace")
    tail = text[-200_000:]
    if not WIDGET_EXPORT.search(tail):
        _fail("the widget module's default export () => {initialize(ctx), render({el})}",
              "explorer.ui.served's state request wraps it")
    if 'this.model.on("change:_py2js_restyle"' not in tail or \
            'this.model.get("_widget_data")' not in tail:
        _fail("FigureModel listening to change:_py2js_restyle and drawing _widget_data")


# ----- plotly.js trimmed to the cartesian traces ------------------------------------------
def cartesian_dir() -> Path:
    """Our build of plotly's widget module with plotly.js's cartesian dist bundle
    (scripts/plotly_cartesian/build.sh), shipped as package data."""
    return Path(__file__).resolve().parents[1] / "resources" / "plotly"


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_cartesian_bundle() -> None:
    """The trimmed module was built from the installed plotly's own widget module (same
    plotly version, same widgetbundle.js bytes) and is intact; else plotly's full one is
    served (a widget module from another plotly would not speak to its FigureWidget)."""
    folder = cartesian_dir()
    try:
        manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        _fail("explorer/resources/plotly/manifest.json (the cartesian bundle's build record)")
    from . import installed

    if manifest.get("plotly") != installed(DIST):
        _fail(f"the plotly version the cartesian bundle was built from ({manifest.get('plotly')})",
              "rebuild it with scripts/plotly_cartesian/build.sh")
    if not widget_bundle().is_file() or _sha256(widget_bundle()) != manifest.get("source_sha256"):
        _fail("widgetbundle.js as the cartesian bundle's build read it (sha256 differs)",
              "rebuild it with scripts/plotly_cartesian/build.sh")
    built = folder / "widgetbundle-cartesian.js"
    if not built.is_file() or _sha256(built) != manifest.get("sha256"):
        _fail("explorer/resources/plotly/widgetbundle-cartesian.js as built (sha256 differs)")
    check_widget_module(built.read_text(encoding="utf-8", errors="replace"))


def served_widget_bundle() -> Path:
    """The widget module the room serves: the cartesian build when its canary passes,
    plotly's own otherwise."""
    try:
        check_cartesian_bundle()
    except CompatError:
        return widget_bundle()
    return cartesian_dir() / "widgetbundle-cartesian.js"


def _canary(piece: str, patch: str, check: Callable[[], None]) -> Canary:
    return Canary(DIST, WRITTEN_FOR, piece, patch, required=False, check=check)


CANARIES = [
    _canary("plotly.io._renderers.nbformat, optional_imports._not_importable, "
            "data_utils.Image/pil_imported", "lean room kernels (no nbformat, no Pillow)",
            check_lean_import),
    _canary("ValidatorCache._json_cache read by .get()", "the used part of the validator "
            "table in room kernels", check_validators),
    _canary("BaseFigure._restyle_child and _in_batch_mode", "unvalidated grid updates",
            check_restyle),
    _canary("FigureWidget _config/_widget_layout/_widget_data, _layout_obj._props, _data",
            "responsive figures; figures in boxes drawn from their state", check_widget_fields),
    _canary("explorer/resources/plotly built from this plotly's widgetbundle.js",
            "a third of the JavaScript per page (plotly.js's cartesian bundle)",
            check_cartesian_bundle),
    _canary("widgetbundle.js default export {initialize, render}", "a page asks for its "
            "figures' whole state once it listens (no figure left blank)", check_widget_module),
]
