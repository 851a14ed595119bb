"""The ``explorer`` command line: argument errors, and a cheap import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_explorer(
    *args: str, timeout: float = 120, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "explorer", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
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
    """Importing the CLI in a fresh interpreter loads neither torch nor the Jupyter stack."""
    heavy = ["torch", "voila", "ipywidgets", "plotly", "IPython"]
    code = (f"import sys, explorer.cli.main\n"
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))\n")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported by explorer.cli.main: {result.stdout.strip()}"


def test_voila_command_serves_packaged_notebook_on_exact_port():
    """The default notebook is the packaged one, and Voila may not move to another port."""
    from explorer.cli import main as cli

    notebook = cli.resource_path(cli.DASHBOARD_NOTEBOOK)
    assert notebook.is_file()
    cmd = cli.voila_command(notebook, host="127.0.0.1", port=8866, open_browser=False, debug=False)
    assert cmd[:4] == [sys.executable, "-m", "explorer.cli.dashboard", str(notebook)]
    assert "--port=8866" in cmd
    assert "--Voila.ip=127.0.0.1" in cmd
    assert "--Voila.port_retries=0" in cmd
    assert "--no-browser" in cmd
    assert "--debug" not in cmd


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.org"])
def test_dashboard_refuses_public_host_without_token(host):
    """A non-loopback --host with no token exits 2 with a message naming the host."""
    env = {k: v for k, v in os.environ.items() if k != "EXPLORER_TOKEN"}
    result = run_explorer("dashboard", "--no-browser", "--host", host, env=env)
    assert result.returncode == 2, result
    assert f"refusing to serve on '{host}' without a token" in result.stderr, result.stderr
    assert "EXPLORER_TOKEN" in result.stderr
    assert "Compression Explorer dashboard:" not in result.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--theme", "blue"], "'blue'"),
        (["--cull-idle", "-5"], "'-5'"),
        (["--cull-idle", "soon"], "'soon'"),
        (["--token", "  "], "'  '"),
        (["--host", " "], "' '"),
    ],
)
def test_dashboard_rejects_bad_options(args, named):
    """Each invalid option exits 2 naming the value, before anything starts."""
    result = run_explorer("dashboard", "--no-browser", *args)
    assert result.returncode == 2, result
    assert named in result.stderr, result.stderr


def test_loopback_hosts_need_no_token():
    from explorer.cli.main import is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "127.3.4.5", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.org"]))


def test_voila_command_options():
    """Theme, preheat, the cap and culling reach Voila's command line; no file is served; the
    token is on no command line and in no environment (only a pipe's descriptor number)."""
    from explorer.cli import main as cli

    notebook = cli.resource_path(cli.TALK_NOTEBOOK)
    assert notebook.is_file()
    cmd = cli.voila_command(
        notebook,
        host="0.0.0.0",
        port=9000,
        open_browser=False,
        debug=False,
        theme="dark",
        preheat=3,
        cull_idle=600,
        max_visitors=5,
        allow_hosts=["demo.example"],
        token_fd=7,
    )
    assert cmd[:4] == [sys.executable, "-m", "explorer.cli.dashboard", "--token-fd=7"]
    for option in (
        "--pool_size=3",
        "--ExplorerVoila.max_visitors=5",
        "--ExplorerVoila.allowed_hosts=['demo.example']",
        "--theme=dark",
        "--preheat_kernel=True",
        "--VoilaConfiguration.file_allowlist=[]",
        "--VoilaConfiguration.show_tracebacks=False",
        "--MappingKernelManager.cull_idle_timeout=600",
        "--MappingKernelManager.cull_interval=60",
    ):
        assert option in cmd, (option, cmd)
    off = cli.voila_command(
        notebook, host="::1", port=9000, open_browser=False, debug=True, cull_idle=0
    )
    assert not any("cull" in part or "preheat" in part for part in off)
    assert "--debug" in off
    assert not any("max_visitors" in part or "token" in part for part in off)
    saved = os.environ.get("EXPLORER_TOKEN"), os.environ.pop("OMP_NUM_THREADS", None)
    os.environ["EXPLORER_TOKEN"] = "s3cret"
    try:
        env = cli.dashboard_env(theme="dark", talk=True, threads=2)
    finally:
        os.environ.pop("EXPLORER_TOKEN")
        if saved[0] is not None:
            os.environ["EXPLORER_TOKEN"] = saved[0]
        if saved[1] is not None:
            os.environ["OMP_NUM_THREADS"] = saved[1]
    assert (env["EXPLORER_THEME"], env["EXPLORER_TALK"], env["OMP_NUM_THREADS"]) == (
        "dark", "1", "2")
    assert "EXPLORER_TOKEN" not in env


def test_token_pipe_and_room_defaults(tmp_path):
    """The token travels through a pipe read once; defaults fit the machine."""
    from explorer.cli import main as cli
    from explorer.cli.dashboard import read_token

    assert read_token(cli.token_pipe(" s3cret\n")) == "s3cret"
    assert cli.default_preheat() >= 1 and cli.default_max_visitors() >= 2
    cpus = os.cpu_count() or 1
    assert cli.kernel_threads(cpus) == 1 and cli.kernel_threads(1) == cpus


@pytest.mark.parametrize(("args", "named"), [(["--preheat", "-1"], "-1"),
                                             (["--max-visitors", "-2"], "-2")])
def test_room_options_reject_negatives(args, named):
    result = run_explorer("dashboard", "--no-browser", *args)
    assert result.returncode == 2 and named in result.stderr, result
