"""Shared fixtures: a live Voila dashboard and a headless Chromium page (Playwright, sync API)."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from explorer.bench.browser import _answers, _free_port
from explorer.bench.kernels import KERNEL_CMDLINE

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # This machine has no network: without these Chromium keeps dialling out and failing.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1800}  # tall enough for the whole app
SERVER_START_TIMEOUT_S = 120.0


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis searches at random, from a seed chosen here unless --hypothesis-seed gives
    one; the header and the summary print it, so a failure in CI reruns exactly with
    `pytest --hypothesis-seed=N` (set before Hypothesis' own plugin reads the option)."""
    if config.getoption("hypothesis_seed", None) is None:
        config.option.hypothesis_seed = str(random.SystemRandom().randrange(2**32))


def _hypothesis_seed_line(config: pytest.Config) -> str:
    seed = config.getoption("hypothesis_seed", None)
    return f"hypothesis seed {seed} (rerun this search: pytest --hypothesis-seed={seed})"


def pytest_report_header(config: pytest.Config) -> str:
    return _hypothesis_seed_line(config)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    terminalreporter.write_line(_hypothesis_seed_line(config))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (fixtures can see that a test failed)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return _free_port()


@pytest.fixture
def digits_app():
    """The app on the shipped digits MLP (CPU), stopped and joined afterwards."""
    from explorer import Session
    from explorer.ui import ExplorerApp

    app = ExplorerApp(Session("digits", "mlp", device="cpu"))
    yield app
    app.jobs.stop()
    app.jobs.wait(60)


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return find_free_port()


def artifact_path(name: str) -> Path:
    """A path under test-artifacts/ (created) for a file named after ``name``."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _stop_process_group(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the process group of ``proc`` (Voila shuts its kernels down), then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _server_answers(url: str) -> bool:
    """Whether an HTTP server answers at ``url`` (any status code counts)."""
    return _answers(url)


@pytest.fixture
def artifacts_dir() -> Path:
    """test-artifacts/ at the repository root (created): screenshots, logs."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def wait_for_http(url: str, proc: subprocess.Popen, log_path: Path, what: str) -> None:
    """Poll ``url`` until a server answers; fail with the log if ``proc`` dies or time runs out."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not _server_answers(url):
        if proc.poll() is not None:
            pytest.fail(
                f"{what} exited with status {proc.returncode} before answering; "
                f"log:\n{log_path.read_text(errors='replace')[-4000:]}"
            )
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} did not answer at {url} within {SERVER_START_TIMEOUT_S:.0f} s; "
                f"log:\n{log_path.read_text(errors='replace')[-4000:]}"
            )
        time.sleep(0.25)  # polling a server that is starting: there is nothing to wait on


@contextlib.contextmanager
def running_server(
    cmd: list[str], probe: str, log_name: str, *, cwd: Path = REPO, env: dict | None = None
) -> Iterator[subprocess.Popen]:
    """Start ``cmd`` in its own process group, wait until ``probe`` answers, stop it on exit."""
    log_path = artifact_path(log_name)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stopping it stops the kernels too
        )
    try:
        wait_for_http(probe, proc, log_path, cmd[0] if len(cmd) < 3 else " ".join(cmd[:4]))
        yield proc
    finally:
        _stop_process_group(proc)


def checkout_env(**extra: str) -> dict[str, str]:
    """os.environ with this checkout first on PYTHONPATH, so Voila's kernels (which run in the
    notebook's folder) import this checkout's explorer rather than another install."""
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, PYTHONUNBUFFERED="1", **extra)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + path if path else "")
    env.pop("EXPLORER_TOKEN", None)
    return env


@contextlib.contextmanager
def dashboard_server(*args: str, env: dict | None = None,
                     with_process: bool = False) -> Iterator:
    """``python -m explorer dashboard ARGS`` on a free port; yields its URL (and, with
    ``with_process``, the server's Popen too)."""
    port = find_free_port()
    cmd = [sys.executable, "-m", "explorer", "dashboard", "--no-browser", "--port", str(port)]
    # Probe a static path: GET / itself would start a kernel and run the notebook.
    url = f"http://127.0.0.1:{port}/"
    with running_server(
        [*cmd, *args], f"{url}voila/static/", f"dashboard-{port}.log", env=env or checkout_env()
    ) as proc:
        yield (url, proc) if with_process else url


def kernel_pids(server: subprocess.Popen) -> list[int]:
    """Kernel processes (ipykernel) started by ``server`` or one of its children."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not KERNEL_CMDLINE.search((entry / "cmdline").read_bytes().decode(errors="replace")):
                continue
            pid = int(entry.name)
            for _ in range(8):  # walk up: kernel -> Voila -> our launcher
                pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1]
                          .split()[1])
                if pid == server.pid:
                    found.append(int(entry.name))
                    break
                if pid <= 1:
                    break
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
    return found


# The browser tests' dashboard: test mode lists kernel errors in the page, and an epoch
# is a few batches so a journey can train every zoo model to the end of an epoch.
TEST_MODE_ENV = {"EXPLORER_TEST_MODE": "1", "EXPLORER_EPOCH_SIZE": "640"}


@pytest.fixture(scope="session")
def dashboard() -> Iterator[tuple[str, subprocess.Popen]]:
    """One light-theme dashboard for the whole run (each page load runs the notebook anew
    in its own kernel), in test mode: its URL and its process."""
    # No preheated pool here: a page's kernel is then the one started for it (the pool's
    # own behaviour, refills included, is tested in test_sharing / test_browser_room).
    with dashboard_server("--preheat", "0", env=checkout_env(**TEST_MODE_ENV),
                          with_process=True) as served:
        yield served


@pytest.fixture(scope="session")
def dashboard_url(dashboard) -> str:
    return dashboard[0]


@pytest.fixture(scope="module")
def _chromium() -> Iterator[object]:
    """One headless Chromium (Debian's /usr/bin/chromium) per test module.

    Module scope: Playwright's sync API runs its own event loop, which should not outlive
    the browser tests (nbclient runs asyncio loops in the same thread later)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make test does, as root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(_chromium, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh page (1400x1800). ``page.console_errors`` collects console errors and uncaught
    page errors; a screenshot goes to test-artifacts/<test-name>.png on teardown."""
    context = _chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors: list[str] = []
    page.console_errors = errors

    def on_console(msg) -> None:
        if msg.type == "error":
            errors.append(f"console: {msg.text}")

    page.on("console", on_console)

    def on_pageerror(exc) -> None:
        stack = getattr(exc, "stack", None) or ""
        errors.append(f"pageerror: {exc}" + (f"\n{stack[:2000]}" if stack else ""))

    page.on("pageerror", on_pageerror)
    try:
        yield page
    finally:
        name = request.node.name
        try:
            page.screenshot(path=str(artifact_path(f"{name}.png")), full_page=True)
        except Exception as exc:  # a failed screenshot must not hide the test's own failure
            errors.append(f"screenshot failed: {exc}")
        if errors:
            artifact_path(f"{name}.console.txt").write_text("\n".join(errors) + "\n")
        context.close()
