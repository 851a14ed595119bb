"""Safe sharing over plain HTTP: only the dashboard is served, visitors see no tracebacks,
idle kernels are culled; the room's rules (Host check, kernels bound to their visitor, the
visitor cap, the token in no child's environment). (Refusals of --host without a token are
in test_cli.py and test_install.py; the restart banner is in test_browser_room.py.)"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import (
    KERNEL_CMDLINE,
    artifact_path,
    checkout_env,
    dashboard_server,
    find_free_port,
    running_server,
)

pytestmark = [pytest.mark.slow]
SECRET = "secret-marker-4711"


def get(url: str, timeout: float = 180) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")


def failing_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"raise ValueError('{SECRET}')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = folder / "failing.ipynb"
    nbformat.write(nb, path)
    return path


def test_visitors_see_no_traceback_unless_debug(tmp_path):
    """An error in the notebook shows a generic message; its text appears only with --debug."""
    notebook = failing_notebook(tmp_path)
    with dashboard_server(str(notebook)) as url:
        status, page = get(url)
    assert status == 200 and SECRET not in page and "Traceback" not in page
    with dashboard_server(str(notebook), "--debug") as url:
        status, page = get(url)
    assert SECRET in page  # the switch works, so the check above can fail


def test_only_the_dashboard_notebook_is_served():
    """Other notebooks and files next to it or in the working directory are refused."""
    with dashboard_server() as url:
        refused = {path: get(url + path)[0] for path in (
            "voila/files/talk.ipynb", "voila/files/digits_mlp.pt", "voila/render/talk.ipynb",
            "voila/files/../../pyproject.toml", "files/pyproject.toml", "api/contents",
            "tree", "talk.ipynb")}
    assert all(code in (403, 404) for code in refused.values()), refused


def test_idle_kernels_are_culled(tmp_path):
    """A visitor who leaves: the kernel is shut down after the idle timeout (here 3 s)."""
    with dashboard_server("--cull-idle", "3") as url:
        port = url.rstrip("/").rsplit(":", 1)[1]
        status, _ = get(url)  # runs the notebook in a new kernel; no websocket stays open
        assert status == 200
        log = artifact_path(f"dashboard-{port}.log")
        deadline = time.monotonic() + 120
        while "Culling kernel" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(1)
        assert "Culling kernel" in log.read_text()


# ----- the room: who may reach the server, who may drive a kernel, how many ----------------
ROOM_TOKEN = "room-token-5a9c1e"


def trivial_notebook(folder: Path) -> Path:
    """A notebook that runs in a blink: these tests are about the server, not the app."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('hello room')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = folder / "trivial.ipynb"
    nbformat.write(nb, path)
    return path


@contextlib.contextmanager
def room_server(*args: str, env: dict | None = None):
    """``explorer dashboard ARGS`` on a free port; yields (url, process)."""
    port = find_free_port()
    cmd = [sys.executable, "-m", "explorer", "dashboard", "--no-browser", "--port", str(port),
           "--cull-idle", "0", *args]
    url = f"http://127.0.0.1:{port}/"
    with running_server(cmd, f"{url}voila/static/", f"room-{port}.log",
                        env=env or checkout_env()) as proc:
        yield url, proc


def descendants(proc) -> list:
    import psutil

    return psutil.Process(proc.pid).children(recursive=True)


def kernels(proc) -> list:
    """The room's live kernel processes (one that ended and awaits its parent's wait, a
    zombie, or one gone meanwhile, is not a kernel any more)."""
    import psutil

    live = []
    for child in descendants(proc):
        try:
            if KERNEL_CMDLINE.search(" ".join(child.cmdline())):
                live.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return live


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect (to the login page) is an answer of its own here


class Visitor:
    """A client with its own cookie jar (a browser of its own)."""

    def __init__(self, url: str, token: str = "") -> None:
        self.url, self.token = url, token
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  NoRedirect())

    def _q(self, path: str) -> str:
        return self.url + path + (f"?token={self.token}" if self.token else "")

    def get(self, path: str = "", headers: dict | None = None) -> tuple[int, str]:
        request = urllib.request.Request(self._q(path), headers=headers or {})
        try:
            with self.opener.open(request, timeout=180) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode("utf-8", "replace")

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def open_channels(self, kernel_id: str, cookie: str | None = None) -> int:
        """Status of a websocket handshake to the kernel's channels (101 when it opens)."""
        import websocket

        ws_url = self._q(f"api/kernels/{kernel_id}/channels").replace("http://", "ws://")
        header = [f"Cookie: {self.cookie_header() if cookie is None else cookie}"]
        try:
            websocket.create_connection(ws_url, header=header, timeout=60).close()
        except websocket.WebSocketBadStatusException as err:
            return err.status_code
        return 101


def kernel_id_of(page: str) -> str:
    match = re.search(r'"kernelId":\s*"([0-9a-f-]+)"', page)
    assert match, page[:2000]
    return match.group(1)


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    """One server for the room tests: a token (from the environment), no preheat, one place."""
    notebook = trivial_notebook(tmp_path_factory.mktemp("room"))
    env = {**checkout_env(), "EXPLORER_TOKEN": ROOM_TOKEN}  # checkout_env drops the token
    with room_server(str(notebook), "--preheat", "0", "--max-visitors", "1", env=env) as served:
        yield served


def test_a_foreign_host_gets_403_and_starts_no_kernel(room):
    """A request naming another Host (a DNS-rebinding page) is refused before any handler."""
    url, proc = room
    for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example"):
        status, _ = Visitor(url, ROOM_TOKEN).get(headers={"Host": host})
        assert status == 403, host
    assert kernels(proc) == []
    status, _ = Visitor(url, ROOM_TOKEN).get("voila/static/", headers={"Host": "localhost"})
    assert status != 403  # loopback names still answer


def test_a_kernel_answers_only_the_visitor_who_started_it(room):
    """The page binds its kernel to a cookie; another client that knows the kernel id (and
    even the token) is refused at the channels websocket, the session API and shutdown; the
    N+1-th visitor gets the room-full page and no kernel."""
    url, proc = room
    first = Visitor(url, ROOM_TOKEN)
    status, page = first.get()
    assert status == 200 and "hello room" in page
    kernel_id = kernel_id_of(page)
    assert first.open_channels(kernel_id) == 101
    other = Visitor(url, ROOM_TOKEN)
    assert other.open_channels(kernel_id, cookie="") == 403
    assert other.get(f"explorer/api/session/{kernel_id}")[0] == 403
    status, body = first.get(f"explorer/api/session/{kernel_id}")
    assert status == 200 and json.loads(body) == {"alive": True, "restarts": 0}
    # The cap: one place, taken. A second visitor gets a friendly page and no kernel.
    status, page = other.get()
    assert status == 503 and "The room is full" in page, (status, page[:500])
    assert len(kernels(proc)) == 1


def test_the_token_is_in_no_child_environment_or_command_line(room):
    """The token reaches Voila through a pipe: not in /proc/<pid>/environ or cmdline of the
    Voila process nor of any kernel."""
    url, proc = room
    if not kernels(proc):
        Visitor(url, ROOM_TOKEN).get()
    children = descendants(proc)
    assert any(KERNEL_CMDLINE.search(" ".join(p.cmdline())) for p in children)
    for child in children:
        environ = Path(f"/proc/{child.pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes()
        assert ROOM_TOKEN.encode() not in environ, child.cmdline()
        assert ROOM_TOKEN.encode() not in cmdline, child.cmdline()
    assert Visitor(url).get()[0] in (302, 401, 403)  # and the token is still required
    assert Visitor(url, "wrong").get()[0] in (302, 401, 403)


def test_the_token_file_works_and_preheat_alone_still_works(tmp_path):
    """--token-file reads the token from a file; --preheat with no number keeps a pool."""
    token_file = tmp_path / "token"
    token_file.write_text(ROOM_TOKEN + "\n")
    token_file.chmod(0o600)
    notebook = trivial_notebook(tmp_path)
    with room_server(str(notebook), "--token-file", str(token_file), "--preheat") as (url, proc):
        deadline = time.monotonic() + 180
        while not kernels(proc) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert kernels(proc), "no preheated kernel"
        status, page = Visitor(url, ROOM_TOKEN).get()
        assert status == 200 and "hello room" in page
        assert Visitor(url, "wrong").get()[0] in (302, 401, 403)
