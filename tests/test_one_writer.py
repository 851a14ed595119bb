"""Issue 15, item 14: one writer. During a job the pump thread draws progress while the
kernel thread answers the user; every figure write holds the app's UI lock, the job's
worker writes none, and the step list the worker appends to is read only under its lock."""

from __future__ import annotations

import threading
import time

from ui_util import settle

from explorer.ui import ExplorerApp
from explorer.ui.curves import CurveBook

SENDERS = ("_send_update_msg", "_send_restyle_msg", "_send_relayout_msg",
           "_send_addTraces_msg", "_send_deleteTraces_msg", "_send_moveTraces_msg",
           "_send_animate_msg")


def spy_on_figure_writes(app: ExplorerApp) -> list[tuple[str, bool]]:
    """(thread name, UI lock held) of every message any figure sends from now on."""
    records: list[tuple[str, bool]] = []
    for fig in app.figures():
        for name in SENDERS:
            original = getattr(fig, name)

            def spy(*args, _original=original, **kwargs):
                records.append((threading.current_thread().name, app.ui_lock.held()))
                return _original(*args, **kwargs)

            setattr(fig, name, spy)
    return records


def test_every_figure_write_during_a_job_holds_the_ui_lock(digits_app):
    app: ExplorerApp = digits_app
    app.tabs.selected_index = 1  # the distillation figure too
    app.tabs.selected_index = 0
    records = spy_on_figure_writes(app)
    app.c.epochs.value = 4
    assert app.start_training()
    layers, moves = app.session.slot.prunable, 0
    while app.jobs.runner.running and moves < 400:  # the user keeps changing views meanwhile
        app.c.layer.value = layers[moves % len(layers)]
        app.c.log_y.value = not app.c.log_y.value
        app.distill.temperature.value = 2 + moves % 5
        moves += 1
        time.sleep(0.01)
    settle(app)
    threads = {name for name, _ in records}
    assert "explorer-pump" in threads and "MainThread" in threads, threads
    assert not any(name.startswith("explorer-training") for name in threads), threads
    assert all(held for _, held in records), [r for r in records if not r[1]][:5]


def test_the_step_list_is_read_whole_while_the_worker_appends():
    book = CurveBook()
    book.start("teacher")
    done = threading.Event()

    def worker():
        for i in range(20_000):
            book.add_step("teacher", float(i))
            if i % 50 == 0:
                book.add_epoch("teacher", 1.0, 0.5)
        done.set()

    thread = threading.Thread(target=worker)
    thread.start()
    reads = 0
    while not done.is_set() or reads == 0:
        curves = book.read("teacher")
        assert len(curves.steps) == len(curves.losses)  # never a half-appended point
        reads += 1
    thread.join()
    assert book.read("teacher").step_count == 20_000 and reads > 1
