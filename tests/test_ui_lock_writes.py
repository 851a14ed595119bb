"""Every widget write from Stop and from the test-mode error list holds the UI lock.

Each trait change of the app's controls and of the error list's widget is observed (an
observer runs in the writing thread, inside the setter), and one made by a thread that
does not hold `app.ui_lock` is recorded; Stop is pressed during a job and errors are
logged from another thread, the way the job's and the curve's threads log them.
"""

from __future__ import annotations

import dataclasses
import logging
import threading

import ipywidgets as W
import pytest
import traitlets
from ui_util import settle, status

from explorer import Session
from explorer.ui import ExplorerApp


@pytest.fixture
def test_mode_app():
    app = ExplorerApp(Session("digits", "mlp", device="cpu"), test_mode=True)
    yield app
    app.jobs.stop()
    app.jobs.wait(60)
    app.errors.close()


def watch_unlocked(app: ExplorerApp) -> list[str]:
    """Trait changes of the controls and the error list made without the UI lock."""
    unlocked: list[str] = []
    widgets = {f.name: getattr(app.c, f.name) for f in dataclasses.fields(app.c)}
    widgets["kernel errors"] = app.errors.widget
    for name, widget in widgets.items():
        if isinstance(widget, W.Widget):
            def check(change, name=name) -> None:
                if not app.ui_lock.held():
                    unlocked.append(f"{name}.{change['name']} in "
                                    f"{threading.current_thread().name}")
            widget.observe(check, names=traitlets.All)
    return unlocked


def test_stop_writes_its_widgets_under_the_ui_lock(test_mode_app):
    app = test_mode_app
    app.c.epochs.value = 200
    unlocked = watch_unlocked(app)
    app.c.train.click()
    assert app.jobs.runner.running
    app.c.stop.click()  # the kernel thread, no lock held (Stop is not a guarded callback)
    settle(app, 60)
    assert "stopped after" in status(app)
    assert not unlocked, unlocked


def test_error_list_writes_under_the_ui_lock(test_mode_app):
    app = test_mode_app
    unlocked = watch_unlocked(app)

    def log() -> None:
        logging.getLogger("explorer.test").error("raised behind the page")

    thread = threading.Thread(target=log, name="job-thread")
    thread.start()
    thread.join()
    assert "raised behind the page" in app.errors.widget.value
    assert not unlocked, unlocked
