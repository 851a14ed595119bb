"""Run the Ray tests (pytest -m ray) in a private network namespace and watch from outside.

    python tests/ray_netns.py [PYTEST ARGS...]        (make test runs it after the rest)

Ray binds its servers to every interface and no setting narrows that, so its tests run
only where loopback is the sole interface: ``unshare --net --pid --fork --mount-proc``
(root, or a user allowed to make namespaces), loopback brought up inside. The new PID
namespace means every Ray process ends when the test run ends, whatever the tests do.

While the tests run, this process (in the original, "host" namespace) answers each port
report a test writes to $EXPLORER_RAY_PORTS_DIR: it reads the listening sockets of the
namespace (/proc/PID/net/tcp* of the unshare process) and of the host (/proc/self/net),
and acknowledges with a verdict the test asserts. The verdict fails when the reported
ports are not listening inside (the check sees nothing) or when any of them listens in
the host namespace.

When no namespace can be made, or Ray is not installed, it prints why and exits 0: the
Ray tests are skipped visibly, never silently. Exit status: the inner pytest's, except
that "no tests collected" (5) is 0 when PYTEST ARGS narrowed the selection, and 1 when
the Ray tests reported no ports (the host check never ran) or a verdict failed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UNSHARE = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]
INNER_TIMEOUT_S = 1800
PORTS_ENV = "EXPLORER_RAY_PORTS_DIR"
LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


def listening(net_dir: str | Path) -> dict[int, list[str]]:
    """Listening TCP ports in a /proc/.../net directory: {port: [bound addresses]}."""
    out: dict[int, list[str]] = {}
    for name in ("tcp", "tcp6"):
        path = Path(net_dir) / name
        if not path.exists():
            continue
        out_list = parse_proc_net_tcp(path.read_text())
        for port, address in out_list:
            out.setdefault(port, []).append(address)
    return out


def parse_proc_net_tcp(text: str) -> list[tuple[int, str]]:
    """(port, address) of every LISTEN line of /proc/net/tcp or tcp6 text."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != LISTEN:
            continue
        address, _, port = fields[1].partition(":")
        found.append((int(port, 16), _address(address)))
    return found


def _address(hex_address: str) -> str:
    """/proc/net/tcp's little-endian hex address as text (IPv4, or IPv6 in 32-bit words)."""
    import ipaddress

    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def only_loopback() -> list[str]:
    """The interfaces other than loopback in this process's network namespace."""
    import socket

    return [name for _, name in socket.if_nameindex() if name != "lo"]


def namespace_problem() -> str | None:
    """Why no private namespace can be made here (None when one can)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip (util-linux, iproute2) is not installed"
    probe = subprocess.run([*UNSHARE, "sh", "-c", "ip link set lo up"], capture_output=True,
                           text=True)
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip().splitlines()
        return f"{' '.join(UNSHARE)} failed: {reason[-1] if reason else probe.returncode}" + (
            " (needs root or user namespaces)" if os.geteuid() != 0 else "")
    return None


class Watcher(threading.Thread):
    """Answers the port reports of the tests inside the namespace of process `pid`."""

    def __init__(self, reports: Path, pid: int):
        super().__init__(daemon=True)
        self.reports, self.pid = reports, pid
        self.verdicts: list[dict] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for report in sorted(self.reports.glob("*.ports.json")):
                ack = report.with_name(report.name.replace(".ports.json", ".ack.json"))
                if not ack.exists():
                    verdict = self.check(json.loads(report.read_text()))
                    self.verdicts.append(verdict)
                    tmp = ack.with_suffix(".tmp")
                    tmp.write_text(json.dumps(verdict))
                    tmp.rename(ack)
            self.done.wait(0.1)

    def check(self, report: dict) -> dict:
        ports = sorted(set(report["ports"]))
        inner_ns = os.readlink(f"/proc/{self.pid}/ns/net")
        host_ns = os.readlink("/proc/self/ns/net")
        inside = listening(f"/proc/{self.pid}/net")
        host = listening("/proc/self/net")
        problems = []
        if inner_ns == host_ns:
            problems.append(f"the tests run in the host network namespace ({host_ns})")
        if not ports:
            problems.append("no ports reported")
        unseen = [p for p in ports if p not in inside]
        if unseen:
            problems.append(f"reported ports not listening inside the namespace: {unseen}")
        exposed = {p: host[p] for p in ports if p in host}
        if exposed:
            problems.append(f"listening in the host namespace: {exposed}")
        return {"label": report.get("label"), "ports": ports, "ok": not problems,
                "problems": problems, "inside": {p: inside.get(p) for p in ports},
                "host_listeners_checked": len(host), "namespace": inner_ns,
                "host_namespace": host_ns}


def main(argv: list[str]) -> int:
    pytest_args = argv or ["tests/test_ray.py"]
    narrowed = bool(argv)
    if importlib.util.find_spec("ray") is None:
        print("SKIPPED Ray tests: Ray is not installed (pip install '.[ray]')", flush=True)
        return 0
    problem = namespace_problem()
    if problem is not None:
        print(f"SKIPPED Ray tests: cannot make a private network namespace: {problem}. "
              "Ray binds every interface, so its tests run only inside one.", flush=True)
        return 0
    # Short paths: Ray's unix sockets live under RAY_TMPDIR (108-byte limit).
    work = Path(tempfile.mkdtemp(prefix="rayns", dir="/tmp"))
    reports = work / "ports"
    reports.mkdir()
    token = work / "auth_token"  # token auth on, as Ray 2.60 defaults; ~/.ray untouched
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {**os.environ, PORTS_ENV: str(reports), "RAY_TMPDIR": str(work),
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "RAY_USAGE_STATS_ENABLED": "0"}
    command = [*UNSHARE, "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
               sys.executable, "-m", "pytest", "-m", "ray", *pytest_args]
    print(f"Ray tests in a private network namespace: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)
    watcher = Watcher(reports, proc.pid)
    watcher.start()
    try:
        rc = proc.wait(INNER_TIMEOUT_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        os.killpg(proc.pid, signal.SIGKILL)  # the namespace's init: everything in it ends
        proc.wait()
        rc = 124
        print(f"Ray tests stopped after {time.perf_counter() - start:.0f} s", flush=True)
    watcher.done.set()
    watcher.join()
    shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - start
    failed = [v for v in watcher.verdicts if not v["ok"]]
    ports = sum(len(v["ports"]) for v in watcher.verdicts)
    print(f"Ray tests: exit status {rc} in {seconds:.1f} s; host-namespace check: "
          f"{len(watcher.verdicts)} Ray instance(s), {ports} port(s), "
          f"{len(failed)} exposed or unseen", flush=True)
    for verdict in watcher.verdicts:
        bound = sorted({a for addresses in verdict["inside"].values() for a in addresses or []})
        print(f"  {verdict['label']}: ports {verdict['ports']} bound to {', '.join(bound)} "
              f"inside; {verdict['host_listeners_checked']} host listeners checked; "
              + ("ok" if verdict["ok"] else "; ".join(verdict["problems"])), flush=True)
    if rc == 5 and narrowed:
        print("(no Ray test matched the arguments)", flush=True)
        return 0
    if rc == 0 and not watcher.verdicts and not narrowed:
        print("FAILED: the Ray tests reported no ports, so the host check never ran",
              flush=True)
        return 1
    return rc if rc != 0 else (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
