"""No file in the package is written around explorer.files (atomic writes).

An AST scan of explorer/ finds every call that writes a file: open() and its cousins in a
writing mode, Path.write_text/write_bytes, shutil copies and moves, os.rename/replace,
torch.save / json.dump / pickle.dump / np.save / Image.save / .tofile to anything but a
handle from atomic_file (or an in-memory buffer), save_pretrained. Each exception is in
ALLOWED with its reason; anything else fails the test, naming the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "explorer"
HELPER = "files.py"  # the one place that may write directly

# (file under explorer/, enclosing function, call) -> why it may write directly
ALLOWED = {
    ("session/persist.py", "save_session", "torch.save"):
        "writes to the caller's own open handle (a download's buffer); a path goes "
        "through atomic_file in the branch above",
    ("session/workflows.py", "export_session", "ckpt.save"):
        "engine.checkpoint.save, which writes through atomic_file",
    ("models/hf.py", "save_hf", "save_pretrained"):
        "transformers writes a whole folder; Session.export(kind='hf') hands it the "
        "temporary folder of explorer.files.atomic_folder",
    ("bench/browser.py", "__init__", "open"):
        "a live log stream a child process writes into while it runs, not a document",
    ("cli/room_sizing.py", "token_pipe", "os.fdopen"):
        "the write end of a pipe (the token handed to the server), not a file",
    ("bench/byo.py", "resnet_folder", "save_pretrained"):
        "transformers writes a whole model folder into the bench's fresh temporary folder",
    ("bench/byo.py", "gpt2_heads_figures", "save_pretrained"):
        "transformers writes a whole model folder into the bench's fresh temporary folder",
}

WRITE_MODE = set("wax+")
MODULE_OPENERS = {"gzip", "bz2", "lzma", "io", "os", "tarfile", "codecs", "zipfile"}
SERIALISERS = {("torch", "save"): 1, ("json", "dump"): 1, ("pickle", "dump"): 1,
               ("np", "save"): 0, ("np", "savez"): 0, ("np", "savez_compressed"): 0,
               ("numpy", "save"): 0, ("numpy", "savez"): 0}
MOVERS = {("shutil", "copy"), ("shutil", "copy2"), ("shutil", "copyfile"),
          ("shutil", "copytree"), ("shutil", "move"), ("os", "rename"), ("os", "replace"),
          ("os", "renames")}


def dotted(node: ast.AST) -> str:
    """'a.b.c' for a Name/Attribute chain, '' otherwise."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def safe_handles(function: ast.AST) -> set[str]:
    """Names bound to an atomic_file handle or an in-memory buffer in `function`."""
    names: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                call = item.context_expr
                if (isinstance(call, ast.Call) and dotted(call.func).endswith("atomic_file")
                        and isinstance(item.optional_vars, ast.Name)):
                    names.add(item.optional_vars.id)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and dotted(node.value.func) in ("io.BytesIO", "io.StringIO", "BytesIO"):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def mode_of(call: ast.Call, index: int) -> ast.AST | None:
    for kw in call.keywords:
        if kw.arg == "mode":
            return kw.value
    return call.args[index] if len(call.args) > index else None


def writes_mode(mode: ast.AST | None) -> bool:
    """A mode that may write; one we cannot read counts as writing."""
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return bool(WRITE_MODE & set(mode.value))
    return True


def violation(call: ast.Call, safe: set[str]) -> str | None:
    """The call's name when it writes a file around atomic_file, else None."""
    name = dotted(call.func)
    if isinstance(call.func, ast.Attribute):  # the receiver may be a call: x().save(...)
        head, attr = dotted(call.func.value), call.func.attr
    else:
        head, attr = "", name
    if name in ("open", "os.fdopen", "zipfile.ZipFile") or (
            attr == "open" and head in MODULE_OPENERS):
        return name if writes_mode(mode_of(call, 1)) else None
    if attr == "open":  # Path.open(mode); Image.open(path) reads
        first = call.args[0] if call.args else None
        mode = mode_of(call, 0) if isinstance(first, ast.Constant) else mode_of(call, 99)
        return name if writes_mode(mode) else None
    method = isinstance(call.func, ast.Attribute) and not head.endswith("files")
    if method and attr in ("write_text", "write_bytes", "tofile", "save_pretrained",
                           "savefig"):
        return attr
    if (head, attr) in MOVERS:
        return name
    if (head, attr) in SERIALISERS:
        index = SERIALISERS[(head, attr)]
        target = call.args[index] if len(call.args) > index else None
        return None if isinstance(target, ast.Name) and target.id in safe else name
    if attr == "save" and call.args:  # Image.save, a model's save, ...
        target = call.args[0]
        if isinstance(target, ast.Name) and target.id in safe:
            return None
        return name or attr
    return None


def scan(source: str, filename: str) -> list[tuple[str, str, int]]:
    """(function, call, line) for each direct write in `source`."""
    tree = ast.parse(source, filename)
    found = []
    scopes = [n for n in ast.walk(tree)
              if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))] + [tree]
    seen: set[int] = set()
    for scope in scopes:  # innermost functions first: a call belongs to its own function
        safe = safe_handles(scope)
        for node in ast.walk(scope):
            if isinstance(node, ast.Call) and id(node) not in seen:
                seen.add(id(node))
                name = violation(node, safe)
                if name is not None:
                    owner = getattr(scope, "name", "<module>")
                    found.append((owner, name, node.lineno))
    return found


def package_writes() -> list[tuple[str, str, str, int]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == HELPER:
            continue
        for owner, name, line in scan(path.read_text(encoding="utf-8"), rel):
            out.append((rel, owner, name, line))
    return out


def test_every_write_goes_through_explorer_files():
    """Each direct write is on the allow-list, with its reason."""
    bad = [f"explorer/{rel}:{line} {owner}(): {name}"
           for rel, owner, name, line in package_writes()
           if (rel, owner, name) not in ALLOWED]
    assert not bad, "write through explorer.files (atomic_file/write_text/write_bytes):\n" \
        + "\n".join(bad)


def test_the_allow_list_has_no_stale_entries():
    """Every allowed exception still exists (a fixed one leaves the list)."""
    present = {(rel, owner, name) for rel, owner, name, _ in package_writes()}
    assert set(ALLOWED) <= present, set(ALLOWED) - present


BAD_SNIPPETS = [
    "def f(p):\n    open(p, 'w').write('x')\n",
    "def f(p):\n    with open(p, mode='ab') as fh:\n        fh.write(b'x')\n",
    "def f(p, m):\n    open(p, m)\n",
    "def f(p):\n    p.write_text('x')\n",
    "def f(p):\n    p.open('w')\n",
    "def f(p):\n    gzip.open(p, 'wt')\n",
    "def f(p):\n    torch.save({}, p)\n",
    "def f(p):\n    fh = open(p, 'rb')\n    json.dump({}, fh)\n",
    "def f(p):\n    np.save(p, x)\n",
    "def f(p, img):\n    img.save(p)\n",
    "def f(a, b):\n    shutil.copy(a, b)\n",
    "def f(a, b):\n    os.replace(a, b)\n",
    "def f(p, x):\n    x.tofile(p)\n",
]
GOOD_SNIPPETS = [
    "def f(p):\n    with atomic_file(p) as fh:\n        torch.save({}, fh)\n",
    "def f(p):\n    with files.atomic_file(p, 'w') as fh:\n        json.dump({}, fh)\n",
    "def f():\n    buf = io.BytesIO()\n    torch.save({}, buf)\n",
    "def f(p):\n    open(p).read()\n",
    "def f(p):\n    open(p, 'rb').read()\n",
    "def f(p):\n    Image.open(p)\n",
    "def f(p):\n    write_text(p, 'x')\n",
]


@pytest.mark.parametrize("source", BAD_SNIPPETS)
def test_the_scan_finds_each_kind_of_write(source):
    """The scan itself can fail: each way of writing a file is caught."""
    assert scan(source, "<snippet>"), source


@pytest.mark.parametrize("source", GOOD_SNIPPETS)
def test_the_scan_passes_atomic_writes_and_reads(source):
    assert scan(source, "<snippet>") == [], source
