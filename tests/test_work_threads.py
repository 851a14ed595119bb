"""A small model's session work runs on one torch thread (explorer.engine.threads:
OpenMP fan-out on a busy machine cost a digits MLP's slider move 40x); a big model's
keeps the default, and the count comes back after every move and optimizer step."""

from __future__ import annotations

import threading

import pytest
import torch

from explorer import Session
from explorer.engine.threads import SMALL_MODEL_PARAMS, WorkLock, threads_for


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_small_model_moves_and_steps_run_on_one_thread(two_threads):
    """The forward passes of a snapshot, a pruning move, a bits move and a training step
    see one thread; the caller's two come back after each."""
    s = Session("digits", "mlp")
    seen: list[int] = []
    s.model.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    s.snapshot()
    s.prune(sparsity=0.5)
    s.quantize(bits=4)
    s.train(epochs=1, steps=2)
    assert len(seen) >= 5 and set(seen) == {1}
    assert torch.get_num_threads() == 2


def test_work_lock_fits_threads_reentrant_and_per_thread(two_threads):
    """Above SMALL_MODEL_PARAMS the count stays; nested holds restore once, at the outer
    release; another thread's count is its own while the lock is held."""
    assert threads_for(SMALL_MODEL_PARAMS - 1, 2) == 1
    assert threads_for(SMALL_MODEL_PARAMS, 2) == 2
    with WorkLock(lambda: SMALL_MODEL_PARAMS):
        assert torch.get_num_threads() == 2
    small = WorkLock(lambda: 10)
    other: list[int] = []
    ready, held, read = threading.Event(), threading.Event(), threading.Event()

    def work() -> None:  # a training job's thread, already running
        torch.ones(1 << 17).relu()  # its first parallel op fixes its own thread count
        ready.set()
        held.wait(10)
        other.append(torch.get_num_threads())
        read.set()

    worker = threading.Thread(target=work)
    worker.start()
    assert ready.wait(10)
    with small:
        with small:
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
        held.set()
        read.wait(10)
    worker.join()
    assert other == [2] and torch.get_num_threads() == 2
    with WorkLock(lambda: 1 // 0):  # no model yet: nothing changes
        assert torch.get_num_threads() == 2
