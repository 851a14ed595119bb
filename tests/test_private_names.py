"""No module outside explorer/compat reaches into another library's private names.

The rule (AST, every module under explorer/ but compat/): a private name (one leading
underscore, not a dunder) used as an attribute (`x._name`, or getattr/setattr/hasattr/
delattr with that string), or imported from a module outside explorer (`from lib import
_name`, `import lib._mod`), is another library's unless explorer itself defines that name
somewhere (a function, class, argument, assignment or attribute it sets). Own private
names are then fine wherever they are used; a library's private name needs a compat
module with a canary, or an entry below with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "explorer"
COMPAT = ROOT / "compat"

# (file relative to explorer/, name): why it stays outside compat
_VERSION = "torch's autograd version counter (no public accessor); the core floors may " \
    "not import compat; the caches' tests fail if it stops changing on in-place edits"
_SUBPARSERS = "stdlib argparse: the type add_subparsers() returns has no public name " \
    "(annotations only)"
_MODULE_SLOTS = "torch.nn.Module's registries: the compact twin shares the masked model's " \
    "tensors by assigning into them (no public way without copying); tests/test_compact.py"
ALLOWED = {
    ("engine/plan.py", "_version"): _VERSION,
    ("session/slots.py", "_version"): _VERSION,
    ("session/quant_cache.py", "_version"): _VERSION,
    ("cli/dashboard_args.py", "_SubParsersAction"): _SUBPARSERS,
    ("cli/run.py", "_SubParsersAction"): _SUBPARSERS,
    ("cli/studies.py", "_SubParsersAction"): _SUBPARSERS,
    ("engine/compact.py", "_parameters"): _MODULE_SLOTS,
    ("engine/compact.py", "_buffers"): _MODULE_SLOTS,
    ("cli/room_log.py", "_reason"): "tornado: the reason phrase set with set_status(code, "
    "reason) has no public getter; an error page without it still says the code",
    ("engine/export.py", "_forward_pre_hooks"): "torch.nn.utils.prune keeps its pruning "
    "methods there and offers no listing; export's tests remove and keep masks",
    ("engine/export.py", "_tensor_name"): "torch.nn.utils.prune.BasePruningMethod's "
    "parameter name (no public accessor)",
    ("session/loadcheck.py", "_weights_only_unpickler"): "torch.load(weights_only=True)'s "
    "own restricted unpickler, reused to check a file before loading it (test_bad_input)",
    ("studies/executors.py", "_processes"): "stdlib ProcessPoolExecutor: shutdown() cannot "
    "end running workers; read with getattr(..., None), so a rename only skips the kill",
}


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def modules() -> list[Path]:
    return [p for p in sorted(ROOT.rglob("*.py")) if COMPAT not in p.parents]


def own_names(paths: list[Path]) -> set[str]:
    """Private names explorer defines (anywhere: they are ours wherever used)."""
    names: set[str] = set()
    for path in paths + sorted(COMPAT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                    isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add(node.attr)
            elif isinstance(node, ast.alias) and node.asname:
                names.add(node.asname)
    return {n for n in names if private(n)}


def foreign_uses(path: Path, own: set[str]) -> list[tuple[int, str]]:
    """(line, name) of each private name of another library used in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and private(node.attr) and node.attr not in own:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("getattr", "setattr", "hasattr", "delattr") and \
                len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and \
                isinstance(node.args[1].value, str) and private(node.args[1].value) and \
                node.args[1].value not in own:
            found.append((node.lineno, node.args[1].value))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                not node.module.startswith("explorer"):
            parts = [*node.module.split("."), *(a.name for a in node.names)]
            found += [(node.lineno, p) for p in parts if private(p)]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, p) for a in node.names if not a.name.startswith("explorer")
                      for p in a.name.split(".") if private(p)]
    return found


def test_no_private_names_of_other_libraries_outside_compat():
    paths = modules()
    own = own_names(paths)
    bad = []
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        for line, name in foreign_uses(path, own):
            if (rel, name) not in ALLOWED:
                bad.append(f"explorer/{rel}:{line}: {name}")
    assert not bad, "another library's private names outside explorer/compat (move the " \
        "patch there with a canary, or allow it with a reason):\n" + "\n".join(bad)


def test_the_rule_catches_a_private_name(tmp_path):
    """The scan can fail: each form it looks for is reported in a stand-in module."""
    module = tmp_path / "m.py"
    module.write_text("import plotly.io._renderers as r\nfrom _plotly_utils import x\n"
                      "fig._restyle_child(1)\ngetattr(fig, '_in_batch_mode')\n"
                      "self._mine = 1\nself._mine\n", encoding="utf-8")
    found = {name for _, name in foreign_uses(module, own={"_mine"})}
    assert found == {"_renderers", "_plotly_utils", "_restyle_child", "_in_batch_mode"}


def test_allowed_entries_are_still_used():
    """An allow-list entry whose use is gone is removed (no stale exceptions)."""
    own = own_names(modules())
    used = {(p.relative_to(ROOT).as_posix(), n) for p in modules()
            for _, n in foreign_uses(p, own)}
    assert set(ALLOWED) <= used, set(ALLOWED) - used
