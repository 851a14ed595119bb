"""Fan out independent jobs: in this process, in a spawned process pool, or as Ray tasks.

``fan_out(fn, jobs, ...)`` is the one place that knows about executors. It runs
``fn(job)`` for every job, collects the results in job order, reports progress after each
finished job, and on stop (an Event set by a Stop button, or Ctrl-C) cancels what is still
outstanding: queued jobs never start, running pool workers are terminated, Ray tasks are
cancelled with ``ray.cancel(force=True)`` and awaited, so a cluster is left idle.

``fn`` and every job must be picklable: ``fn`` a module-level function of an installed
package (a Ray cluster must have the same package installed), jobs plain data and tensors.
Importing this module imports neither torch nor Ray.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import CPUS_PER_POINT_MAX, EXECUTORS, GPUS_PER_POINT_MAX, check_choice, check_number

RAY_HINT = ("executor='ray' needs Ray, which is not installed: pip install "
            "'compression-explorer[ray]' (or pip install 'ray>=2.40')")
RAY_EXPOSURE_WARNING = (
    "warning: starting a local Ray instance; Ray listens on all network interfaces and "
    "can run code for anyone who reaches it: see docs/ray.md, 'Ray and the network' "
    "(pass --address to use a cluster you manage)")
RAY_CANCEL_WAIT_S = 30.0  # how long a stop waits for Ray to confirm its cancellations
POLL_S = 0.2  # how often a waiting executor looks at the stop flag


@dataclass(frozen=True)
class Progress:
    """One finished job: ``done`` of ``total`` so far, which job, its result, where it ran.

    ``placement`` is None except under Ray: the node, the GPU ids Ray assigned, and the
    resources the task held (``{"node": ..., "gpu_ids": [...], "resources": {...}}``).
    """

    done: int
    total: int
    index: int
    result: Any
    elapsed: float
    placement: dict | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


def bar(done: int, total: int, width: int = 20) -> str:
    """'[########------------]  8/20'."""
    filled = round(width * done / total) if total else width
    return f"[{'#' * filled}{'-' * (width - filled)}] {done:>{len(str(total))}}/{total}"


def default_workers(n_jobs: int, cpus_per_job: float = 1) -> int:
    """As many parallel jobs as this machine's cores hold at ``cpus_per_job`` each."""
    return max(1, min(n_jobs, int((os.cpu_count() or 1) // max(cpus_per_job, 1))))


def check_resources(cpus_per_job: float, gpus_per_job: float) -> tuple[float, float]:
    """Per-job Ray resources, checked (ValueError naming the bad one)."""
    cpus = check_number("cpus_per_point", cpus_per_job, 0.0, CPUS_PER_POINT_MAX)
    gpus = check_number("gpus_per_point", gpus_per_job, 0.0, GPUS_PER_POINT_MAX)
    # Ray takes fractions below 1 and whole numbers above (1.5 GPUs is refused by Ray).
    for name, value in (("cpus_per_point", cpus), ("gpus_per_point", gpus)):
        if value > 1 and value != int(value):
            raise ValueError(f"{name} above 1 must be a whole number; got {value!r}")
    if cpus == 0 and gpus == 0:
        raise ValueError("cpus_per_point and gpus_per_point cannot both be 0")
    return cpus, gpus


def fan_out(fn: Callable[[Any], Any], jobs: Sequence[Any], *, executor: str = "local",
            workers: int | None = None, address: str | None = None,
            cpus_per_job: float = 1, gpus_per_job: float = 0,
            stop: threading.Event | None = None,
            on_progress: Callable[[Progress], None] | None = None,
            warn: Callable[[str], None] | None = None) -> list[Any]:
    """Run ``fn(job)`` for every job; the results in job order, None where a job did not
    finish because ``stop`` was set. An exception from a job (or Ctrl-C) cancels the rest
    and is raised.

    executor "local": ``workers`` 0 or 1 runs the jobs one after another in this process
    (the default is one per ``cpus_per_job`` cores); more runs a spawned process pool.
    executor "ray": each job a Ray task holding ``cpus_per_job`` CPUs and ``gpus_per_job``
    GPUs. Without ``address``, a local Ray instance for ``workers`` parallel jobs is started
    (after ``warn(RAY_EXPOSURE_WARNING)``; ``warn`` defaults to a line on stderr) and shut
    down at the end; with ``address`` the jobs go to that cluster, which stays up. When
    this process is already connected (``ray.init`` was called), that connection is used.
    ``on_progress`` is called in this thread after each finished job.
    """
    check_choice("executor", executor, EXECUTORS)
    cpus, gpus = check_resources(cpus_per_job, gpus_per_job)
    if workers is not None:
        workers = int(check_number("workers", workers, 0, 1024, integer=True))
    if address is not None and executor != "ray":
        raise ValueError(f"address={address!r} needs executor='ray'")
    jobs = list(jobs)
    tracker = _Tracker(len(jobs), on_progress)
    if not jobs:
        return []
    if executor == "ray":
        n = default_workers(len(jobs), cpus) if workers is None else max(workers, 1)
        return _run_ray(fn, jobs, address, n, cpus, gpus, stop, tracker, warn)
    n = default_workers(len(jobs), cpus) if workers is None else workers
    if n <= 1:
        return _run_serial(fn, jobs, stop, tracker)
    return _run_pool(fn, jobs, n, stop, tracker)


class _Tracker:
    """Results in job order plus the progress count."""

    def __init__(self, total: int, on_progress: Callable[[Progress], None] | None):
        self.results: list[Any] = [None] * total
        self.done = 0
        self.start = time.perf_counter()
        self.on_progress = on_progress

    def finish(self, index: int, result: Any, placement: dict | None = None) -> None:
        self.results[index] = result
        self.done += 1
        if self.on_progress is not None:
            self.on_progress(Progress(self.done, len(self.results), index, result,
                                      time.perf_counter() - self.start, placement))


def _stopped(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def _run_serial(fn, jobs, stop, tracker: _Tracker) -> list[Any]:
    for i, job in enumerate(jobs):
        if _stopped(stop):
            break
        tracker.finish(i, fn(job))
    return tracker.results


def _run_pool(fn, jobs, workers: int, stop, tracker: _Tracker) -> list[Any]:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # spawn, not fork: forking a process whose torch thread pools already ran can hang.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_sigint)
    clean = False
    try:
        pending = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
        while pending and not _stopped(stop):
            done, _ = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: pending[f]):
                tracker.finish(pending.pop(future), future.result())
        clean = not pending
    finally:
        if clean:
            pool.shutdown(wait=True)
        else:  # stopped, failed or interrupted: nothing queued starts, running ones end now
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
            for process in processes:
                process.join(10)
                if process.is_alive():  # ignored SIGTERM (stuck in native code): end it
                    process.kill()
                    process.join(5)
    return tracker.results


def _ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to this process, which stops them (a terminal sends it
    to the whole process group)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_ray(fn, jobs, address, workers: int, cpus: float, gpus: float, stop,
             tracker: _Tracker, warn) -> list[Any]:
    try:
        import ray
    except ImportError:
        raise ImportError(RAY_HINT) from None
    connected_here = not ray.is_initialized()
    if connected_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            (warn or _stderr)(RAY_EXPOSURE_WARNING)
            # a loaded machine can take longer than Ray's default to start a raylet
            os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")
            # "local": a new instance, never a cluster that `ray start` left on this machine
            ray.init(address="local", include_dashboard=False, num_cpus=max(1, int(
                round(workers * max(cpus, 1)))), log_to_driver=False)
    refs: dict = {}
    try:
        _check_feasible(ray, cpus, gpus, local=connected_here and not address, warn=warn)
        task = ray.remote(_ray_task).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        fn_ref = ray.put(fn)
        refs = {task.remote(fn_ref, job): i for i, job in enumerate(jobs)}
        while refs and not _stopped(stop):
            done, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_S)
            for ref in done:
                result, placement = ray.get(ref)
                tracker.finish(refs.pop(ref), result, placement)
    finally:
        if refs:  # stopped, failed or interrupted
            _cancel_ray(ray, list(refs))
        if connected_here:
            ray.shutdown()
    return tracker.results


def _check_feasible(ray, cpus: float, gpus: float, local: bool, warn) -> None:
    """A task no node can hold waits forever: refuse it on a local instance, warn on a
    cluster (an autoscaler may still add such a node)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in nodes):
        return
    have = ", ".join(f"{r.get('CPU', 0):g} CPUs/{r.get('GPU', 0):g} GPUs" for r in nodes)
    message = (f"no Ray node offers {cpus:g} CPUs and {gpus:g} GPUs per point "
               f"(nodes: {have or 'none'})")
    if local:
        raise ValueError(message)
    (warn or _stderr)(f"warning: {message}; the points wait until the cluster has one")


def _cancel_ray(ray, refs: list) -> list:
    """Cancel outstanding tasks and wait until Ray has ended them (their CPUs are free);
    the refs still unresolved after RAY_CANCEL_WAIT_S.

    A cancel can miss a task that a worker has just been handed but not started (Ray 2.60
    answers "not running" and the task then waits on the worker, holding its CPUs), so
    whatever is still unresolved is cancelled again every second."""
    deadline = time.monotonic() + RAY_CANCEL_WAIT_S
    pending = list(refs)
    while pending:
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished, or the owner is gone
                pass
        if time.monotonic() > deadline:
            break
        try:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
        except Exception:
            break
    return pending


def _ray_task(fn, job):
    """A job inside a Ray worker: its result and where it ran."""
    import ray

    ctx = ray.get_runtime_context()
    placement = {"node": ctx.get_node_id(),
                 "gpu_ids": [str(g) for g in ctx.get_accelerator_ids().get("GPU", [])],
                 "resources": ctx.get_assigned_resources()}
    return fn(job), placement


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
