"""The dashboard server's kernel processes: which they are, their memory, when they idle.

Shared by the browser benchmark (explorer.bench.browser) and the visitors benchmark
(explorer.bench.visitors).
"""

from __future__ import annotations

import re
import statistics
import time

# A Jupyter kernel's command line names its connection file, whatever starts it
# (ipykernel_launcher, or the room's explorer.cli.room_kernel).
KERNEL_CMDLINE = re.compile(r"kernel-[\w-]+\.json")


def kernel_processes(proc) -> list:
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for child in children:
        try:
            if KERNEL_CMDLINE.search(" ".join(child.cmdline())):
                out.append(child)
        except psutil.NoSuchProcess:
            pass
    return out


def cpu_seconds(server_proc) -> dict[str, float]:
    """CPU seconds used so far by this machine's Chromium processes, by the server's kernels
    and by the server itself (Voila), so that a room's wait can be split by who spent it."""
    import psutil

    def used(p) -> float:
        try:
            times = p.cpu_times()
            return times.user + times.system
        except psutil.Error:
            return 0.0

    kernels = kernel_processes(server_proc)
    browsers = []
    for p in psutil.process_iter():
        try:
            if "chromium" in p.name().lower():
                browsers.append(p)
        except psutil.Error:
            pass
    try:
        root = psutil.Process(server_proc.pid)
        server = [root, *root.children(recursive=True)]  # our launcher, Voila
    except psutil.Error:
        server = []
    kernel_pids = {k.pid for k in kernels}
    return {"browsers": sum(map(used, browsers)), "kernels": sum(map(used, kernels)),
            "server": sum(used(p) for p in server if p.pid not in kernel_pids)}


def kernel_rss_mib(proc) -> float | None:
    """Median RSS (MiB) of the server's kernels right now."""
    sizes = []
    for kernel in kernel_processes(proc):
        try:
            sizes.append(kernel.memory_info().rss / 2**20)
        except Exception:  # gone in between
            pass
    return statistics.median(sizes) if sizes else None


def wait_idle(proc, ceiling_s: float, threshold: float = 8.0) -> None:
    """Wait until every kernel uses under ``threshold`` % CPU over two 1 s samples."""
    deadline = time.monotonic() + ceiling_s
    calm = 0
    while time.monotonic() < deadline and calm < 2:
        kernels = kernel_processes(proc)
        for k in kernels:
            try:
                k.cpu_percent(None)
            except Exception:
                pass
        time.sleep(1.0)
        busy = []
        for k in kernels:
            try:
                busy.append(k.cpu_percent(None))
            except Exception:
                pass
        calm = calm + 1 if kernels and max(busy, default=0) < threshold else 0
