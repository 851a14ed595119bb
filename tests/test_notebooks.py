"""Notebooks: each one runs top to bottom, is committed clean, and matches its packaged copy."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# Files shipped as package data for installed commands, and their copies for repo browsers.
PACKAGED_COPIES = [
    ("notebooks/dashboard.ipynb", "explorer/resources/dashboard.ipynb"),
    ("notebooks/talk.ipynb", "explorer/resources/talk.ipynb"),
    ("assets/digits_mlp.pt", "explorer/resources/digits_mlp.pt"),
]
CELL_TIMEOUT_S = 600
# Notebooks that run whole reproductions: their kernel first takes the tests' tiny budgets
# (tests/tiny_studies.py), so this test checks the notebook's own code, not the studies' numbers
# (test_seeds and test_repro check those paths; even quick mode took 100 s here).
TINY_BUDGET_NOTEBOOKS = {"reproduce.ipynb"}
SHRINK_STUDIES_CELL = (
    f"import sys\nsys.path.insert(0, {str(REPO / 'tests')!r})\n"
    "from tiny_studies import shrink_studies\nshrink_studies()"
)


def test_there_are_notebooks():
    """notebooks/ holds the Voila dashboard, the talk and the JupyterLab tour."""
    names = {p.name for p in NOTEBOOKS}
    assert {"dashboard.ipynb", "talk.ipynb", "explore.ipynb"} <= names, names


def test_every_packaged_resource_has_a_checked_copy():
    """Each file under explorer/resources is in PACKAGED_COPIES, so none can drift unseen."""
    packaged = {
        str(p.relative_to(REPO))
        for p in (REPO / "explorer" / "resources").iterdir()
        if p.is_file() and p.name != "__init__.py"
    }
    # digits.npz is data, not a copy: test_lean_kernel checks it against scikit-learn
    generated = {"explorer/resources/digits.npz"}
    assert packaged - generated == {b for _, b in PACKAGED_COPIES}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch):
    """A copy of the notebook runs top to bottom in a fresh python3 kernel with no error."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    monkeypatch.setenv("EXPLORER_QUICK", "1")
    # The kernel is a child process: let it import this checkout even without an install.
    pythonpath = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(REPO) + (os.pathsep + pythonpath if pythonpath else ""))
    monkeypatch.setenv("MPLBACKEND", "Agg")

    nb = nbformat.read(copy, as_version=4)
    if path.name in TINY_BUDGET_NOTEBOOKS:
        nb.cells.insert(0, nbformat.v4.new_code_cell(SHRINK_STUDIES_CELL))
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        startup_timeout=120,
        allow_errors=False,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{exc}")
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors, f"{path.name}: error outputs {errors}"
    nbformat.write(nb, tmp_path / f"executed-{path.name}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(path: Path):
    """Every code cell is stored with no outputs and no execution count."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize(
    ("repo_copy", "packaged"), PACKAGED_COPIES, ids=[a for a, _ in PACKAGED_COPIES]
)
def test_packaged_copy_is_identical(repo_copy: str, packaged: str):
    """What installed commands read (package data) is byte-identical to the repo's copy."""
    a, b = REPO / repo_copy, REPO / packaged
    assert a.is_file(), f"{repo_copy} is missing"
    assert b.is_file(), f"{packaged} is missing"
    assert a.read_bytes() == b.read_bytes(), f"{repo_copy} and {packaged} differ: copy one over"
