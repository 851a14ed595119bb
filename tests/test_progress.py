"""Feedback in time on big models (issue 18): training and distillation report progress
within an epoch (fraction done, running loss) without reading every step's loss, and the
app's status line shows it."""

from __future__ import annotations

import math

import pytest
import torch

from explorer import Session, config
from explorer.engine.train import EpochEvent, ProgressEvent, StepEvent


@pytest.fixture
def often(monkeypatch):
    """Report every 5 steps, however fast they come."""
    monkeypatch.setattr(config, "PROGRESS_INTERVAL_S", 0.0)
    monkeypatch.setattr(config, "PROGRESS_EVERY_STEPS", 5)


def reports(events: list, epoch: int = 1) -> list[ProgressEvent]:
    return [e for e in events if isinstance(e, ProgressEvent) and e.epoch == epoch]


def test_training_reports_progress_within_the_first_epoch(often):
    torch.set_num_threads(2)
    s = Session("digits", "mlp", device="cpu")
    events: list = []
    s.train(epochs=2, batch_size=16, on_event=events.append)
    first = reports(events)
    steps = [e for e in events if isinstance(e, StepEvent) and e.epoch == 1]
    n = len(s.data.train)
    per_epoch = math.ceil(n / 16)
    assert len(steps) == steps[0].steps_per_epoch == per_epoch > 50
    assert [r.done for r in first] == list(range(5, per_epoch, 5))  # not at the epoch's end
    assert all(0 < r.fraction < 1 and math.isfinite(r.running_loss) for r in first)
    assert events.index(first[0]) < next(i for i, e in enumerate(events)
                                         if isinstance(e, EpochEvent))
    # the running loss is the mean of the steps so far; the epoch's mean is unchanged
    sizes = [16] * (per_epoch - 1) + [n - 16 * (per_epoch - 1)]
    total = 0.0
    for k, (step, size) in enumerate(zip(steps, sizes), 1):
        total += step.loss * size
        if k == 45:
            assert first[8].done == 45 and first[8].running_loss == total / (16 * 45)
    epoch = next(e for e in events if isinstance(e, EpochEvent))
    assert epoch.train_loss == total / n


def test_distillation_reports_progress_within_an_epoch(often):
    s = Session("digits", "mlp", device="cpu")
    events: list = []
    s.students.distill(0.5, epochs=1, batch_size=32, on_event=events.append)
    assert len(reports(events)) >= 5


def test_no_report_when_steps_come_faster_than_the_interval(monkeypatch):
    monkeypatch.setattr(config, "PROGRESS_INTERVAL_S", 3600.0)
    s = Session("digits", "mlp", device="cpu")
    events: list = []
    s.train(epochs=1, batch_size=16, on_event=events.append)
    assert reports(events) == []


def test_the_status_line_shows_the_running_loss(monkeypatch):
    """A report's running loss reaches the status line, the steps after it move the place
    on (keeping the report's loss), and the bar follows: through the job's own pump."""
    fed = [ProgressEvent(epoch=1, epochs=1, step=40, steps_per_epoch=100, done=40,
                         running_loss=0.52341),
           StepEvent(epoch=1, step=41, steps_per_epoch=100, loss=1.0, accuracy=None),
           ProgressEvent(epoch=1, epochs=1, step=50, steps_per_epoch=100, done=50,
                         running_loss=0.5)]
    shown = _shown_while_fed(monkeypatch, fed, 1)
    assert "epoch 1, step 41 (41% of the epoch), running loss 0.5234" in shown[1][0]
    assert [value for _, value in shown] == [400, 410, 500]


def test_on_an_accelerator_step_losses_stay_on_the_device(often, monkeypatch):
    """The accelerator's path, run on the CPU: step losses are tensors (never read by the
    loop), reports still come, and the epoch's mean is the same."""
    from explorer.engine import train

    s = Session("digits", "mlp", device="cpu")
    eager: list = []
    s.train(epochs=1, batch_size=16, on_event=eager.append)
    s.undo()
    monkeypatch.setattr(train, "reads_free", lambda device: False)
    lazy: list = []
    s.train(epochs=1, batch_size=16, on_event=lazy.append)
    steps = [e for e in lazy if isinstance(e, StepEvent)]
    assert all(isinstance(e.loss, torch.Tensor) and isinstance(e.accuracy, torch.Tensor)
               for e in steps)
    assert [float(e.loss) for e in steps] == [e.loss for e in eager if isinstance(e, StepEvent)]
    assert [r.running_loss for r in reports(lazy)] == [r.running_loss for r in reports(eager)]
    end = [e.train_loss for e in lazy + eager if isinstance(e, EpochEvent)]
    assert end[0] == end[1]


def test_on_an_accelerator_a_bad_loss_is_caught_at_the_next_report(often, monkeypatch):
    from explorer.config import TrainConfig
    from explorer.data.datasets import Split
    from explorer.engine import train
    from explorer.engine.train import DIVERGED, StopEvent, train_steps

    monkeypatch.setattr(train, "reads_free", lambda device: False)
    calls = []

    def nan_at_7(out, x, y, index):  # finite, then NaN from the 7th step on
        calls.append(1)
        loss = torch.nn.functional.cross_entropy(out, y)
        return loss * math.nan if len(calls) >= 7 else loss

    model = torch.nn.Linear(4, 2)
    data = Split(torch.randn(320, 4), torch.arange(320) % 2)
    events = list(train_steps(model, data, data, "classification",
                              TrainConfig(epochs=1, lr=0.1, optimizer="sgd", batch_size=16),
                              loss_fn=nan_at_7))
    stop = events[-1]
    assert isinstance(stop, StopEvent) and stop.reason == \
        f"{DIVERGED}: the loss became non-finite by step 10", stop  # the report after 7
    assert [r.done for r in reports(events)] == [5]


def test_a_steps_batch_accuracy_is_worked_out_when_read():
    """On the CPU a step's accuracy is computed on demand, and equals the batch's share of
    correct argmax predictions."""
    from explorer.engine.train import BatchAccuracy

    logits = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    targets = torch.tensor([1, 1, 1, 0])
    assert float(BatchAccuracy(logits, targets)) == 0.75


class _View:
    """What a JobController uses of the app: records each status line with the bar."""

    def __init__(self) -> None:
        import threading
        from types import SimpleNamespace

        self.session = SimpleNamespace(selected="m", slot=SimpleNamespace(kept_note=""))
        self.c = SimpleNamespace(progress=SimpleNamespace(value=0, max=1000),
                                 status=SimpleNamespace(value=""))
        self.ui_lock = threading.RLock()
        self.seen = threading.Condition()
        self.lines: list[tuple[str, int]] = []

    def set_status(self, text: str, error: bool = False) -> None:
        self.c.status.value = text
        with self.seen:
            self.lines.append((text, self.c.progress.value))
            self.seen.notify_all()

    def set_busy(self, busy: bool) -> None: ...

    def job_progress(self) -> None: ...

    def job_finished(self, slot, failed: bool) -> None: ...

    def apply_pruning(self, during_job: bool = False) -> bool:
        return True


def _run_events(epochs: int, per_epoch: int) -> list:
    """One training run's events, as train_steps yields them (steps count from 1)."""
    events: list = []
    for epoch in range(1, epochs + 1):
        for k in range(1, per_epoch + 1):
            step = (epoch - 1) * per_epoch + k
            events.append(StepEvent(epoch=epoch, step=step, steps_per_epoch=per_epoch,
                                    loss=1.0, accuracy=None))
        events.append(EpochEvent(epoch=epoch, epochs=epochs, step=epoch * per_epoch,
                                 train_loss=1.0, val_loss=1.0, val_accuracy=None))
    return events


def _bar_while_fed(monkeypatch, fed: list, epochs_hint: float) -> list[int]:
    """The bar's value after each event of `fed` (see _shown_while_fed)."""
    return [value for _, value in _shown_while_fed(monkeypatch, fed, epochs_hint)]


def _shown_while_fed(monkeypatch, fed: list, epochs_hint: float) -> list[tuple[str, int]]:
    """Run a job that publishes only `fed`, each once the pump has shown the one before
    (no clock: it waits for the status line); the status line and the bar after each."""
    import functools

    from explorer.ui import jobs as J

    monkeypatch.setattr(J, "Pump", functools.partial(J.Pump, interval=0.005))
    view = _View()
    jobs = J.JobController(view)  # type: ignore[arg-type]

    def work(stop, on_event):
        for event in fed:
            with view.seen:
                count = len(view.lines)
                on_event(event)
                assert view.seen.wait_for(lambda n=count: len(view.lines) > n, timeout=30)

    assert jobs.start("training", work, epochs_hint=epochs_hint, who="m")
    assert jobs.wait(60)
    during = [(text, value) for text, value in view.lines if ": epoch " in text]
    assert len(during) == len(fed)
    return during


def test_the_bar_follows_the_latest_event_when_the_pump_skips_most(monkeypatch):
    """Issue 28, item 4: the pump hands over only the newest event, so epoch ends go
    unseen; the bar must still read the job's place from the event it gets (it sat at
    0-4% through epoch 28 of 30, then jumped to 100%)."""
    epochs, per_epoch = 30, 2
    fed = _run_events(epochs, per_epoch)[4::5]  # every 5th event: the pump saw only these
    during = _bar_while_fed(monkeypatch, fed, epochs)
    for value, event in zip(during, fed):
        place = event.epoch if isinstance(event, EpochEvent) else event.step / per_epoch
        assert abs(value - 1000 * place / epochs) <= 1, (event, value)
    assert max(during) > 500


def test_the_bar_goes_on_across_the_runs_of_one_job(monkeypatch):
    """Prune and fine-tune, a sweep: several runs, each counting epochs from 1; the bar
    adds the finished runs' epochs, even when their last events went unseen."""
    runs, epochs, per_epoch = 3, 4, 2
    one = _run_events(epochs, per_epoch)
    fed = (one * runs)[4::5]
    assert not any(isinstance(e, EpochEvent) and e.epoch == epochs for e in fed)  # ends unseen
    during = _bar_while_fed(monkeypatch, fed, runs * epochs)
    assert during == sorted(during) and max(during) > 800
    truth = [1000 * (i * 5 + 5) / len(one * runs) for i in range(len(fed))]  # events done
    assert all(abs(v - t) <= 1000 / (runs * epochs) for v, t in zip(during, truth))
