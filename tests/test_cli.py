"""The ``explorer`` command line: argument errors, and a cheap import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_explorer(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "explorer", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("port", ["0", "70000", "abc", "-1", "8866.5"])
def test_dashboard_rejects_bad_port(port):
    """An invalid --port exits with status 2 and names the value, before starting anything."""
    result = run_explorer("dashboard", "--no-browser", "--port", port)
    assert result.returncode == 2, result
    assert f"'{port}'" in result.stderr, result.stderr
    assert "explorer: error: --port:" in result.stderr, result.stderr
    assert "Compression Explorer dashboard:" not in result.stdout


def test_dashboard_rejects_missing_notebook(tmp_path):
    """A NOTEBOOK that does not exist exits with status 2 and names the path."""
    missing = tmp_path / "nope.ipynb"
    result = run_explorer("dashboard", str(missing), "--port", "8866")
    assert result.returncode == 2, result
    assert str(missing) in result.stderr


def test_no_command_prints_usage():
    """``explorer`` alone prints usage to stderr and exits with status 2."""
    result = run_explorer()
    assert result.returncode == 2
    assert "usage: explorer" in result.stderr


def test_help_lists_dashboard():
    """``explorer --help`` exits 0 and lists the dashboard subcommand."""
    result = run_explorer("--help")
    assert result.returncode == 0, result
    assert "dashboard" in result.stdout


def test_importing_cli_does_not_import_heavy_libraries():
    """``import explorer.cli`` in a fresh interpreter loads neither torch nor the Jupyter stack."""
    heavy = ["torch", "voila", "ipywidgets", "plotly", "IPython"]
    code = f"import sys, explorer.cli\nprint(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported by explorer.cli: {result.stdout.strip()}"


def test_voila_command_serves_packaged_notebook_on_exact_port():
    """The default notebook is the packaged one, and Voila may not move to another port."""
    from explorer import cli

    notebook = cli.resource_path(cli.DASHBOARD_NOTEBOOK)
    assert notebook.is_file()
    cmd = cli.voila_command(notebook, host="127.0.0.1", port=8866, open_browser=False, debug=False)
    assert cmd[:4] == [sys.executable, "-m", "voila", str(notebook)]
    assert "--port=8866" in cmd
    assert "--Voila.ip=127.0.0.1" in cmd
    assert "--Voila.port_retries=0" in cmd
    assert "--no-browser" in cmd
    assert "--debug" not in cmd
