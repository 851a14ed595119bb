"""Sweeps on Ray (issue 17), run only inside a private network namespace.

`make test` runs this module through tests/ray_netns.py: `unshare --net --pid --fork
--mount-proc`, loopback up, nothing else. Ray binds its servers to every interface, so
the module refuses to run where any other interface exists. Every Ray instance here
reports its ports to ray_netns.py, which checks from outside that none of them listens
in the host namespace.

One Ray head (`ray start --head`, 2 CPUs, 2 logical GPUs) serves the module; tests
connect to it as a client or submit to it with --address, and one test starts a local
instance of its own, as `explorer sweep --executor ray` does without --address (the CLI's
side of that, the warning before Ray starts, is tested without Ray in test_executors.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install '.[ray]')")

from ray_netns import PORTS_ENV, listening, only_loopback  # noqa: E402

_exposed = only_loopback()
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.skipif(
    bool(_exposed), reason=f"Ray binds every interface and this namespace has "
    f"{', '.join(_exposed)}: Ray tests run only in a private network namespace (make test, "
    "or python tests/ray_netns.py)")]

import torch  # noqa: E402

from explorer import Session  # noqa: E402
from explorer.studies.executors import RAY_EXPOSURE_WARNING, fan_out  # noqa: E402
from explorer.studies.sweep import sweep  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
HEAD_CPUS, HEAD_GPUS = 2, 2
START_TIMEOUT_S = 180
GRID = {"sparsity": [0.5, 0.9], "finetune_epochs": [0, 1]}
ACK_TIMEOUT_S = 60


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, PYTHONUNBUFFERED="1", RAY_raylet_start_wait_time_s="120")
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + path if path else "")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _numbers(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def ray_ports() -> set[int]:
    """The ports the connected Ray reports: GCS, and per node its raylet, object manager,
    runtime-env agent and metrics/dashboard agents (where started)."""
    ctx = ray.get_runtime_context()
    ports = {int(ctx.gcs_address.rsplit(":", 1)[1])}
    keys = ("NodeManagerPort", "ObjectManagerPort", "RuntimeEnvAgentPort", "MetricsExportPort",
            "MetricsAgentPort", "DashboardAgentListenPort")
    for node in ray.nodes():
        ports |= {int(node[k]) for k in keys if int(node.get(k) or -1) > 0}
    return ports


def report_ports(label: str, ports: set[int]) -> dict | None:
    """Hand `ports` to ray_netns.py outside the namespace and return its verdict (None when
    this run has no watcher: a namespace made by hand)."""
    reports = os.environ.get(PORTS_ENV)
    if not reports:
        return None
    path = Path(reports) / f"{label}-{os.getpid()}.ports.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"label": label, "ports": sorted(ports)}))
    tmp.rename(path)
    ack = path.with_name(path.name.replace(".ports.json", ".ack.json"))
    deadline = time.monotonic() + ACK_TIMEOUT_S
    while not ack.exists():
        assert time.monotonic() < deadline, f"no answer from ray_netns.py for {path.name}"
        time.sleep(0.1)
    return json.loads(ack.read_text())


def _assert_contained(label: str, ports: set[int]) -> None:
    inside = listening("/proc/self/net")
    assert ports and ports <= set(inside), (ports, inside)  # what Ray reports does listen
    verdict = report_ports(label, ports)
    if verdict is not None:
        assert verdict["ok"], verdict["problems"]


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> str:
    """`ray start --head` on 127.0.0.1 (2 CPUs, 2 logical GPUs) in its own process group;
    its address. Stopped by its process group, never by `ray stop` (that would kill every
    Ray of this user on the machine)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("head") / "head.log"
    cmd = [sys.executable, "-c", "from ray.scripts.scripts import main; main()", "start",
           "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
           "--num-cpus", str(HEAD_CPUS), "--num-gpus", str(HEAD_GPUS),
           "--include-dashboard", "false", "--disable-usage-stats", "--block"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while b"Ray runtime started" not in log.read_bytes():
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.25)
        yield address
    finally:
        # SIGTERM drains for up to 30 s; whatever is left dies with the PID namespace
        for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if proc.poll() is not None:
                break
            os.killpg(proc.pid, sig)
            try:
                proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture
def client(head) -> str:
    """This process connected to the head (sweeps then use that connection)."""
    ray.init(address=head, log_to_driver=False)
    try:
        yield head
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def session() -> Session:
    torch.set_num_threads(1)
    return Session("digits", "mlp", device="cpu")  # the shipped checkpoint; the CLI's base


@pytest.fixture(scope="module")
def inline(session) -> list[dict]:
    """The grid run one point after another in this process: the reference numbers."""
    return sweep(session, GRID, workers=0).rows


def _cpus_free(expected: float, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while ray.available_resources().get("CPU", 0) < expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_head_ports_do_not_listen_in_the_host_namespace(client):
    """The ports the head reports listen inside this namespace and, checked from outside
    by ray_netns.py, nowhere in the host namespace."""
    if not os.environ.get(PORTS_ENV):
        pytest.skip("no host-side watcher: run through tests/ray_netns.py (make test)")
    # everything listening here is the head's: its reported ports and its workers'
    _assert_contained("head", ray_ports() | set(listening("/proc/self/net")))


def test_sweep_same_numbers_under_ray(session, inline, client):
    """The seeded grid gives the in-process executor's numbers on Ray, in grid order, with
    one progress report per point."""
    seen = []
    table = sweep(session, GRID, executor="ray", on_progress=seen.append)
    assert _numbers(table.rows) == _numbers(inline)
    assert sorted(p.done for p in seen) == [1, 2, 3, 4] and {p.total for p in seen} == {4}
    assert all(p.placement and p.placement["resources"].get("CPU") == 1.0 for p in seen)
    assert table.meta["executor"] == "ray" and not table.meta["stopped"]


def test_points_see_the_gpus_ray_assigned(session, inline, client):
    """Logical GPUs: each point holds the GPUs and CPUs asked for, sees the ids Ray gave it,
    and without CUDA runs on the CPU, with the CPU's numbers."""
    grid = {"sparsity": [0.5, 0.9], "finetune_epochs": [0]}
    seen = []
    one = sweep(session, grid, executor="ray", gpus_per_point=1, on_progress=seen.append)
    expect = "cuda" if torch.cuda.is_available() else "cpu"
    assert [r["device"] for r in one.rows] == [expect, expect]
    assert all(r["gpu_ids"] in ("0", "1") for r in one.rows), one.rows
    assert all(p.placement["resources"] == {"CPU": 1.0, "GPU": 1.0} for p in seen)
    assert _numbers([{k: v for k, v in r.items() if k not in ("device", "gpu_ids")}
                     for r in one.rows]) == _numbers([inline[0], inline[2]])
    seen.clear()
    both = sweep(session, {"sparsity": [0.5]}, executor="ray", cpus_per_point=2,
                 gpus_per_point=2, on_progress=seen.append)
    assert both.rows[0]["gpu_ids"] == "0,1"
    assert seen[0].placement["resources"] == {"CPU": 2.0, "GPU": 2.0}
    with pytest.raises(ValueError, match="whole number"):
        sweep(session, {"sparsity": [0.5]}, executor="ray", gpus_per_point=1.5)


def test_stop_cancels_outstanding_ray_tasks(client):
    """Stop after the first job: the running and the queued tasks are cancelled, and the
    cluster's CPUs are free again long before the jobs would have ended."""
    stop = threading.Event()
    seen = []

    def progress(p) -> None:
        seen.append(p)
        stop.set()

    start = time.monotonic()
    results = fan_out(time.sleep, [0, 600, 600, 600], executor="ray", stop=stop,
                      on_progress=progress)
    assert time.monotonic() - start < 120
    assert len(results) == 4 and [p.index for p in seen] == [0]
    assert _cpus_free(HEAD_CPUS), ray.available_resources()


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "explorer", *args], cwd=REPO, env=_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_cli_address_progress_and_ctrl_c(client, tmp_path):
    """--address submits to the head (no local Ray, no exposure warning); the progress bar
    counts points; Ctrl-C (SIGINT to the process group, as a terminal sends it) cancels
    the outstanding points on the cluster, prints the finished rows and exits 130."""
    proc = _cli("sweep", "--executor", "ray", "--address", client, "--grid", "sparsity=0.5",
                "--grid", "finetune_epochs=0,400,400", "--json", str(tmp_path / "t.json"))
    lines: list[str] = []
    out_lines: list[str] = []
    readers = [threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True),
               threading.Thread(target=lambda: out_lines.extend(proc.stdout), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any("1/3" in line for line in lines):
            assert proc.poll() is None, "".join(lines)[-3000:]
            assert time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for reader in readers:
        reader.join(10)
    err, out = "".join(lines), "".join(out_lines)
    assert proc.returncode == 130, err[-3000:]
    assert "stopping" in err and RAY_EXPOSURE_WARNING not in err
    assert "1 of 3 points" in out and "stopped" in out, out
    rows = json.loads((tmp_path / "t.json").read_text())["rows"]
    assert [r["finetune_epochs"] for r in rows] == [0]
    assert _cpus_free(HEAD_CPUS), ray.available_resources()


def test_local_ray_warns_first_and_stays_in_the_namespace(session, inline, head):
    """Without an address (and not connected), a local Ray is started after the one-line
    exposure warning, gives the in-process numbers, and its ports (reported by Ray, plus
    every socket it opened) do not listen in the host namespace."""
    assert not ray.is_initialized()
    before = set(listening("/proc/self/net"))  # the head's sockets
    warnings: list[str] = []
    checked: list[bool] = []

    def progress(p) -> None:
        if not checked:  # Ray is up: this process is its driver
            new = ray_ports() | (set(listening("/proc/self/net")) - before)
            _assert_contained("local", new)
            checked.append(True)

    grid = {"sparsity": [0.5, 0.9], "finetune_epochs": [0]}
    table = sweep(session, grid, executor="ray", workers=2, warn=warnings.append,
                  on_progress=progress)
    assert warnings == [RAY_EXPOSURE_WARNING] and checked
    assert not ray.is_initialized()  # the instance it started is shut down
    assert _numbers(table.rows) == _numbers([inline[0], inline[2]])
