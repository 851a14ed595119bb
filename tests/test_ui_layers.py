"""The ui package's layering: no import cycle, no mixins, the core reached through Session."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from explorer.ui.host import Host
from explorer.ui.jobs import JobView

UI = Path(__file__).resolve().parent.parent / "explorer" / "ui"
# What ui may import from the core's lower floors: value types and name lists only.
# value types: Snapshot and events; Regime (Session.regime returns it; the Distill tab
# names the next students' regime with Regime.describe)
ALLOWED_CORE = {"explorer.engine.metrics", "explorer.engine.train", "explorer.engine.regime"}


def is_module(name: str) -> bool:
    path = UI.parent.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def module_name(path: Path) -> str:
    parts = ["explorer", "ui"] + ([] if path.stem == "__init__" else [path.stem])
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (functions, TYPE_CHECKING blocks count)."""
    package = "explorer.ui"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - max(node.level - 1, 0)]
            if node.level == 0:
                base = []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            subs = {f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}")}
            found.update(subs or {target})  # `from . import plots` imports explorer.ui.plots
    return found


def ui_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in UI.glob("*.py")}
    return {name: imports(path) & set(modules) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_ui_has_no_import_cycle():
    """No module in explorer/ui reaches itself through imports, wherever they sit."""
    graph = ui_graph()
    # the package imports the app, and first ui.served (in a room's kernel: plotly's widget
    # without nbformat, a trimmed validator table)
    assert "explorer.ui.app" in graph
    assert graph["explorer.ui"] == {"explorer.ui.served", "explorer.ui.app"}
    assert find_cycle(graph) is None, find_cycle(graph)


def test_the_cycle_finder_finds_a_cycle():
    """The checker itself can fail: a two-module loop is reported."""
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_no_panel_imports_the_app():
    """Only the package's __init__ imports app.py; panels get a Host."""
    importers = [n for n, deps in ui_graph().items() if "explorer.ui.app" in deps]
    assert importers == ["explorer.ui"], importers


def test_ui_reaches_the_core_through_session_and_value_types():
    """ui imports data/models/engine only for value types; name lists come from config."""
    for path in UI.glob("*.py"):
        core = {m for m in imports(path)
                if m.split(".")[:2] in (["explorer", "data"], ["explorer", "models"],
                                        ["explorer", "engine"])}
        modules = {m for m in core if m.count(".") == 2}  # explorer.engine.metrics, ...
        assert modules <= ALLOWED_CORE, (path.name, modules - ALLOWED_CORE)


def test_ui_classes_are_not_mixins():
    """No ui class inherits from more than one base, and none is a *Mixin."""
    for path in UI.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                assert len(node.bases) <= 1, (path.name, node.name)
                assert not node.name.endswith("Mixin"), (path.name, node.name)


def protocol_members(proto: type) -> dict[str, object]:
    """A Protocol's attributes (value None) and methods."""
    members: dict[str, object] = dict.fromkeys(proto.__annotations__)
    members.update({name: value for name, value in vars(proto).items()
                    if callable(value) and not name.startswith("_")})
    return members


def test_the_app_is_what_its_panels_and_jobs_expect(digits_app):
    """ExplorerApp has every Host and JobView member; methods take the same parameters."""
    for proto in (Host, JobView):
        for name, method in protocol_members(proto).items():
            assert hasattr(digits_app, name), (proto.__name__, name)
            if method is not None:
                want = list(inspect.signature(method).parameters)
                got = ["self", *inspect.signature(getattr(digits_app, name)).parameters]
                assert got == want, (proto.__name__, name, got)


# The controls AppState names (controls.Controls attribute names); "value" is the slider.
STATE_CONTROLS = {"mode", "slider", "scope", "structured", "norm", "layer", "log_y", "page",
                  "curves"}


def control_value_reads(source: str) -> list[int]:
    """Lines that read `<x>.<control>.value` for a control AppState names (writes and
    other attributes pass)."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Attribute) and node.attr == "value"
            and isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Attribute)
            and node.value.attr in STATE_CONTROLS]


def test_the_ui_reads_the_settings_from_app_state_not_from_widgets():
    """AppState is the source of truth: outside state.py (which links the widgets to it)
    no ui module reads a linked control's value."""
    reads = {path.name: lines for path in UI.glob("*.py") if path.name != "state.py"
             if (lines := control_value_reads(path.read_text()))}
    assert reads == {}, reads
    # the scan itself can fail
    assert control_value_reads("x = c.layer.value\nc.layer.value = 1\nc.lr.value") == [1]


def test_one_host_protocol():
    """The panels, Display, Actions and the layout share one Host protocol; JobView, what
    a JobController uses (host.py imports jobs.py), is a part of it, member for member."""
    hosts = [(path.name, node.name) for path in UI.glob("*.py")
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.ClassDef) and "Host" in node.name
             and any(getattr(b, "id", None) == "Protocol" for b in node.bases)]
    assert hosts == [("host.py", "Host")], hosts
    host, view = protocol_members(Host), protocol_members(JobView)
    assert set(view) <= set(host), set(view) - set(host)
    for name in view:
        if name in JobView.__annotations__:
            assert JobView.__annotations__[name] == Host.__annotations__[name], name
        else:
            assert (list(inspect.signature(view[name]).parameters)  # type: ignore[arg-type]
                    == list(inspect.signature(host[name]).parameters)), name  # type: ignore[arg-type]
