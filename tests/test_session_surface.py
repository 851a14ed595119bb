"""Session by composition (issue 27): a small public surface documented in one table,
collaborators with one role each, no mixins anywhere, old names warning for a release."""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import pytest

from explorer import Session
from explorer.session import moved

PACKAGE = Path(__file__).resolve().parent.parent / "explorer"
MAX_PUBLIC = 35


@pytest.fixture(scope="module")
def session() -> Session:
    return Session("digits", "mlp", device="cpu")


def public_names(session: Session) -> set[str]:
    return {n for n in dir(session) if not n.startswith("_")}


def table_names() -> set[str]:
    """The names in the first column of the table in Session's docstring."""
    lines = (Session.__doc__ or "").splitlines()
    rules = [i for i, line in enumerate(lines) if line.strip() and not line.strip("= ")]
    assert len(rules) == 3, "one table: a top rule, a header rule and a bottom rule"
    names: set[str] = set()
    for row in lines[rules[1] + 1:rules[2]]:
        cell = row.strip().split("  ")[0]
        names.update(re.findall(r"[a-z_]+", cell))
    return names


def test_public_names_are_few_and_all_in_the_docstring_table(session):
    names = public_names(session)
    assert len(names) <= MAX_PUBLIC, sorted(names)
    assert names == table_names(), (names ^ table_names())


def test_collaborators_hold_their_roles(session):
    assert session.jobs.running is None and session.jobs.started >= 0
    assert session.slots.names == ("teacher",) and session.slots.current is session.slot
    with pytest.raises(ValueError, match="no student model yet"):
        session.slots.model("student")
    with pytest.raises(ValueError, match="language model on text"):
        session.lm.sample()
    with pytest.raises(ValueError, match="model slot must be one of"):
        session.slots["nope"] = session.slot


def resolve(session: Session, path: str) -> object:
    """The value at a dotted path, or the ValueError it raises (a text-only name)."""
    try:
        owner = session
        for part in path.split("."):
            owner = getattr(owner, part)
        return owner
    except ValueError as err:
        return str(err).replace("Session.", "")


@pytest.mark.parametrize("old", sorted(moved.MOVED))
def test_a_moved_name_warns_naming_its_new_spelling(session, old):
    new = moved.MOVED[old]
    with pytest.warns(DeprecationWarning, match=re.escape(f"use session.{new}")):
        value = resolve(session, old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new spelling does not warn
        expected = resolve(session, new)
    if callable(value):  # a bound method: the same function of the same object
        assert value.__func__ is expected.__func__ and value.__self__ is expected.__self__
    else:
        assert value is expected or value == expected


def test_old_calls_still_work_and_writes_go_through(session):
    with pytest.warns(DeprecationWarning, match=r"session\.measure\(split, slot=\.\.\.\)"):
        snap = session.measure_slot("teacher", "val", full=False)
    assert snap.extra["model_slot"] == "teacher"
    with pytest.warns(DeprecationWarning, match="SLOT_NAMES"):
        assert session.SLOTS[0] == "teacher"
    with pytest.warns(DeprecationWarning, match="settings.bn_recalibration"):
        session.bn_recalibration = False
    assert session.settings.bn_recalibration is False
    session.settings.bn_recalibration = True
    with pytest.raises(AttributeError):
        session.no_such_name  # noqa: B018


def classes() -> list[tuple[str, ast.ClassDef]]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                found.append((str(path.relative_to(PACKAGE)), node))
    return found


def test_no_mixins_and_no_multiple_inheritance_anywhere_in_the_package():
    for where, node in classes():
        assert len(node.bases) <= 1, (where, node.name)
        assert not node.name.endswith("Mixin"), (where, node.name)
        for base in node.bases:  # a base that is `object` at run time, typed otherwise
            assert ast.unparse(base) not in {"_Base", "Base"}, (where, node.name)


def test_no_function_takes_an_untyped_session():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for arg in node.args.args + node.args.kwonlyargs:
                    if arg.arg == "session":
                        note = None if arg.annotation is None else ast.unparse(arg.annotation)
                        assert note not in (None, "Any", "object"), (str(path), node.name)


def test_no_module_outside_session_reads_an_underscore_name_of_a_session():
    """Only explorer/session/ may touch a session's private state (`session._x`, also
    through `self.session` / `host.session`): the rest goes through the public table."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if "session" in path.relative_to(PACKAGE).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                owner = node.value
                name = owner.id if isinstance(owner, ast.Name) else \
                    owner.attr if isinstance(owner, ast.Attribute) else ""
                if name in ("session", "sess"):
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}")
    assert not found, found
