"""fan_out and the sweep's progress/stop plumbing without Ray (issue 17); Ray itself is in
test_ray.py, which runs only in a private network namespace."""

from __future__ import annotations

import importlib.machinery
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import types

import pytest
import ray_netns

from explorer.cli.studies import _ctrl_c_stops
from explorer.studies.executors import RAY_EXPOSURE_WARNING, Progress, bar, fan_out
from explorer.studies.sweep import format_progress


def test_fan_out_keeps_job_order_and_reports_each_job():
    """In-process and pooled: results in job order, one progress call per job."""
    for workers in (0, 2):
        seen: list[Progress] = []
        assert fan_out(math.factorial, [5, 0, 3], workers=workers, on_progress=seen.append) \
            == [120, 1, 6]
        assert sorted(p.done for p in seen) == [1, 2, 3] and {p.total for p in seen} == {3}
        assert {p.index: p.result for p in seen} == {0: 120, 1: 1, 2: 6}
    assert fan_out(math.factorial, []) == []


def test_pool_stop_terminates_running_and_queued_jobs():
    """Stop after the first job: the pool's running job is terminated, the queued one never
    starts, and no worker process is left."""
    stop = threading.Event()
    start = time.monotonic()
    results = fan_out(time.sleep, [0, 600, 600], workers=2, stop=stop,
                      on_progress=lambda p: stop.set())
    assert time.monotonic() - start < 60 and results == [None, None, None]
    # active_children() also reaps: a terminated worker can read as alive until then
    deadline = time.monotonic() + 30
    while [p for p in multiprocessing.active_children() if p.is_alive()] and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]


def test_serial_stop_and_job_errors():
    """In-process, stop takes effect between jobs; a failing job raises (pool too)."""
    stop = threading.Event()
    assert fan_out(math.factorial, [1, 2, 3], workers=0, stop=stop,
                   on_progress=lambda p: stop.set()) == [1, None, None]
    for workers in (0, 2):
        with pytest.raises(ValueError, match="negative"):
            fan_out(math.factorial, [3, -1], workers=workers)


@pytest.mark.parametrize("kwargs, word", [
    ({"executor": "dask"}, "dask"), ({"address": "h:1"}, "h:1"),
    ({"cpus_per_job": 0, "gpus_per_job": 0}, "both be 0"),
    ({"gpus_per_job": 1.5}, "whole number"), ({"workers": -1}, "workers")])
def test_fan_out_rejects_bad_options(kwargs, word):
    with pytest.raises(ValueError, match=word):
        fan_out(math.factorial, [1], **kwargs)


def test_progress_line():
    row = {"sparsity": 0.5, "finetune_epochs": 1, "test_accuracy": 0.96111, "seconds": 2.0,
           "gpu_ids": "1"}
    line = format_progress(Progress(2, 8, 3, row, 12.34))
    assert line == ("[#####---------------] 2/8  sparsity=0.5 finetune_epochs=1: test 0.9611 "
                    "on GPU 1 (12.3 s)")
    assert bar(0, 3, 3) == "[---] 0/3" and bar(3, 3, 3) == "[###] 3/3"


class FakeRay(types.ModuleType):
    """Just enough of Ray's API for fan_out, running each task at once in this process."""

    def __init__(self, events: list[str]):
        super().__init__("ray")
        self.__spec__ = importlib.machinery.ModuleSpec("ray", None)
        self.events, self.initialized, self.options = events, False, {}

    def is_initialized(self):
        return self.initialized

    def init(self, **kwargs):
        print("FAKE RAY INIT", file=sys.stderr)
        self.events.append(f"init {kwargs.get('address')}")
        self.initialized = True

    def shutdown(self):
        self.events.append("shutdown")
        self.initialized = False

    def nodes(self):
        return [{"Alive": True, "Resources": {"CPU": 4.0}}]

    def put(self, value):
        return value

    def remote(self, fn):
        ray = self

        class Task:
            def options(self, **options):
                ray.options = options
                return self

            def remote(self, fn_ref, job):
                return Ref((fn_ref(job), {"gpu_ids": [], "resources": {"CPU": 1.0}}))

        return Task()

    def wait(self, refs, num_returns=1, timeout=None):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return ref.value


class Ref:
    def __init__(self, value):
        self.value = value


def test_local_ray_warns_before_starting_and_address_does_not(monkeypatch):
    events: list[str] = []
    fake = FakeRay(events)
    monkeypatch.setitem(sys.modules, "ray", fake)
    assert fan_out(math.factorial, [3, 4], executor="ray", workers=2,
                   warn=lambda m: events.append(m)) == [6, 24]
    assert events == [RAY_EXPOSURE_WARNING, "init local", "shutdown"]
    assert fake.options == {"num_cpus": 1.0, "num_gpus": 0.0, "max_retries": 0}
    events.clear()
    fan_out(math.factorial, [3], executor="ray", address="10.0.0.5:6379", cpus_per_job=2,
            warn=events.append)
    assert events == ["init 10.0.0.5:6379", "shutdown"]
    with pytest.raises(ValueError, match="no Ray node offers 1 CPUs and 1 GPUs"):
        fan_out(math.factorial, [3], executor="ray", gpus_per_job=1)


def test_cli_prints_the_ray_warning_before_ray_starts(monkeypatch, capsys):
    """`explorer sweep --executor ray` (no --address): the exposure warning is the first
    line on stderr, before Ray starts; a progress line per point; then the table."""
    from explorer.cli.main import main

    monkeypatch.setitem(sys.modules, "ray", FakeRay([]))
    assert main(["sweep", "--executor", "ray", "--grid", "sparsity=0.5,0.9"]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert lines[:2] == [RAY_EXPOSURE_WARNING, "FAKE RAY INIT"], lines
    assert [line[:27] for line in lines[2:4]] == ["[##########----------] 1/2 ",
                                                  "[####################] 2/2 "]
    assert "2 of 2 points" in out and "(ray, " in out


@pytest.mark.parametrize("argv, word", [
    (["--gpus-per-point", "1"], "needs --executor ray"),
    (["--executor", "ray", "--gpus-per-point", "1.5"], "whole number"),
    (["--executor", "ray", "--cpus-per-point", "0"], "both be 0"),
    (["--cpus-per-point", "x"], "'x'")])
def test_cli_checks_resources_before_torch(argv, word):
    import subprocess

    code = ("import sys\nfrom explorer.cli.main import main\ntry:\n    rc = main(sys.argv[1:])\n"
            "except SystemExit as e:\n    rc = e.code\nprint(rc, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, "sweep", "--grid", "sparsity=0.5",
                          *argv], capture_output=True, text=True)
    assert out.stdout.split() == ["2", "False"], out.stderr
    assert word in out.stderr


def test_first_ctrl_c_stops_second_interrupts():
    stop = threading.Event()
    before = signal.getsignal(signal.SIGINT)
    with _ctrl_c_stops(stop):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)  # the handler runs between bytecodes of this thread
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert signal.getsignal(signal.SIGINT) is before


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: 0100007F:ACB9 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   2: 0100007F:83B9 0100007F:D19C 01 00000000:00000000 00:00000000 00000000     0
"""
TCP6 = """  sl  local_address                         remote_address                        st
   0: 0000000000000000FFFF00000100007F:A263 00000000000000000000000000000000:0000 0A
   1: 00000000000000000000000000000000:18EB 00000000000000000000000000000000:0000 0A
"""


def test_proc_net_tcp_parser():
    assert ray_netns.parse_proc_net_tcp(TCP) == [(44217, "127.0.0.1"), (8080, "0.0.0.0")]
    assert ray_netns.parse_proc_net_tcp(TCP6) == [(41571, "::ffff:7f00:1"), (6379, "::")]


def test_host_check_fails_in_the_host_namespace(tmp_path):
    """The watcher's verdict is not a formality: pointed at its own namespace with a port
    nobody listens on, it fails for both reasons."""
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening
        verdict = ray_netns.Watcher(tmp_path, os.getpid()).check({"label": "x",
                                                                  "ports": [port]})
    assert not verdict["ok"]
    assert any("host network namespace" in p for p in verdict["problems"])
    assert any("not listening inside" in p for p in verdict["problems"])


def test_runner_skips_visibly_without_a_namespace(monkeypatch, capsys):
    monkeypatch.setattr(ray_netns, "namespace_problem", lambda: "unshare: Operation not "
                        "permitted (needs root or user namespaces)")
    monkeypatch.setattr(ray_netns.importlib.util, "find_spec", lambda name: object())
    assert ray_netns.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SKIPPED Ray tests: cannot make a private network namespace: "
                          "unshare: Operation not permitted")
