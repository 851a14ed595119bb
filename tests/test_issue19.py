"""Issue 19's table: a row per numbered item and surface (API, CLI, app handler).

Refused rows assert that the message names the value and that the session (every slot's
weights, base, masks, undo stack and rewind points, the history and the counters) is
unchanged bit for bit. The crafted-file corpus of item 2/3 lives in test_load_corpus.py,
the browser upload of item 1 in test_browser_upload.py, the property test in
test_properties.py.
"""

from __future__ import annotations

import html
import re
import threading
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
from load_corpus import CASES, build
from state_util import fingerprint, same, unchanged
from torch import nn

from explorer import Session
from explorer.cli.main import main as cli_main
from explorer.engine.train import DIVERGED, StepEvent, StopEvent
from explorer.session.persist import session_payload
from explorer.studies.sweep import sweep
from explorer.ui import ExplorerApp

BIG = 10**400


def small_session(**kw) -> Session:
    torch.manual_seed(0)
    s = Session("digits", "mlp", device="cpu", **kw)
    s.prune(sparsity=0.3)
    s.train(epochs=1, batch_size=512)  # an undo entry, masks, a rewind point, an epoch record
    return s


@pytest.fixture(scope="module")
def session() -> Session:
    return small_session()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Callable[[str], bytes]:
    base = session_payload(small_session(hidden=(32, 16), pretrained=False))
    folder = tmp_path_factory.mktemp("corpus19")
    return lambda case_id: build(next(c for c in CASES if c.id == case_id), base,
                                 folder).read_bytes()


# ----- user models of items 4 and 7 ---------------------------------------------------
class FailsAt(nn.Module):
    """Trains fine until the k-th training forward pass, which raises."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.k, self.calls = k, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.k:
                raise RuntimeError(f"boom at training call {self.k}")
        return self.net(x)


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 10)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.out(torch.relu(self.b(torch.relu(self.a(x)))))


def bn_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))


def frozen() -> nn.Module:
    model = nn.Sequential(nn.Linear(64, 10))
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def fail_at_step(k: int):
    def on_event(event):
        if isinstance(event, StepEvent) and on_event.seen == k:
            raise RuntimeError(f"callback failed at event {k}")
        on_event.seen += isinstance(event, StepEvent)
    on_event.seen = 0
    return on_event


def xy(n=40, features=6, classes=2, dtype=torch.float32):
    return torch.randn(n, features).to(dtype), torch.arange(n) % classes


# ----- API rows: (item, id, action on the module's session, error, message regex) ------
API = [
    (2, "load the 0.5 MB bomb", lambda s, c: Session.load(c("compression bomb 0.5 MB -> "
                                                            "512 MiB")), "expand"),
    (2, "load 2000 aliased undo", lambda s, c: Session.load(c("aliased undo x2000")),
     "2000 undo entries"),
    (2, "load hidden 6000x6000", lambda s, c: Session.load(c("huge hidden 6000x6000")),
     r"\(6000, 64\)"),
    (3, "load history [1, 2, 3]", lambda s, c: Session.load(c("history [1, 2, 3]")),
     "history record 0"),
    (3, "load without val_loss", lambda s, c: Session.load(c("epoch record without val_loss")),
     "val_loss"),
    (3, "load float masks", lambda s, c: Session.load(c("float masks")), "torch.float32"),
    (3, "load scalar masks", lambda s, c: Session.load(c("scalar masks")), r"shape \(\)"),
    (3, "load int64 base", lambda s, c: Session.load(c("base int64")), "torch.int64"),
    (3, "load a number", lambda s, c: Session.load(3), "got int"),
    (8, "sweep grid of 20,000", lambda s, c: sweep(s, {"sparsity": [0.5] * 20,
                                                       "lr": [1e-3] * 1000}), "20,000"),
    (7, "seed 10**400", lambda s, c: Session("digits", seed=BIG), "401 digits"),
    (7, "epochs 10**400", lambda s, c: s.train(epochs=BIG), "401 digits"),
    (7, "steps 10**400", lambda s, c: s.train(steps=BIG), "401 digits"),
    (7, "batch 10**400", lambda s, c: s.train(batch_size=BIG), "401 digits"),
    (7, "sparsity 10**400", lambda s, c: s.prune(sparsity=BIG), "401 digits"),
    (7, "threshold 10**400", lambda s, c: s.prune(threshold=BIG), "401 digits"),
    (7, "soft index 10**400", lambda s, c: s.students.soft_targets(BIG, student=None),
     "401 digits"),
    (7, "hidden=10", lambda s, c: Session("digits", hidden=10), "got 10"),
    (7, "hidden 10**400", lambda s, c: Session("digits", hidden=(BIG,)), "401 digits"),
    (7, "tied weights", lambda s, c: Session("digits", Tied()), "a.weight and b.weight"),
    (7, "model on meta", lambda s, c: Session("digits", nn.Linear(64, 10, device="meta")),
     "weight is on the meta device"),
    (7, "float64 model", lambda s, c: Session("digits", nn.Linear(64, 10).double()),
     "torch.float64"),
    (7, "requires_grad False", lambda s, c: Session("digits", frozen()).train(steps=2),
     "requires_grad=False"),
    (7, "label 10**9", lambda s, c: Session(train=(torch.randn(40, 6), torch.tensor(
        [0] * 39 + [10**9])), val=xy()), "1000000000"),
    (7, "complex inputs", lambda s, c: Session(train=xy(dtype=torch.cfloat), val=xy()),
     "complex64"),
    (7, "complex targets", lambda s, c: Session(train=(torch.randn(40, 6), torch.ones(
        40, dtype=torch.cfloat)), val=xy(), task="regression"), "complex64"),
    (7, "float masks", lambda s, c: s.pruning.install_masks(
        {s.slot.prunable[0]: torch.ones_like(s.slot.base[s.slot.prunable[0]])}), "torch.float32"),
    (7, "scalar masks",
     lambda s, c: s.pruning.install_masks({s.slot.prunable[0]: torch.tensor(True)}),
     r"shape \(\)"),
    (7, "numpy bool sparsity", lambda s, c: s.prune(sparsity=np.bool_(True)), "True"),
    (8, "save under /proc", lambda s, c: s.save("/proc/x.pt"), "/proc/x.pt"),
    (8, "export under /sys", lambda s, c: s.export("/sys/x.pt"), "/sys/x.pt"),
    (8, "save to /dev/null", lambda s, c: s.save("/dev/null"), "/dev/null"),
    (8, "iterative rewind 9 unrecorded", lambda s, c: s.prune_iteratively(0.5, rewind=9),
     "got 9"),
    (8, "sweep rewind 5", lambda s, c: sweep(s, {"sparsity": [0.5], "rewind": [5]}),
     "'init' in a sweep"),
]


@pytest.mark.parametrize("row", API, ids=[f"#{r[0]} {r[1]}" for r in API])
def test_api(row, session, corpus) -> None:
    _, _, action, names = row
    before = fingerprint(session)
    with pytest.raises(ValueError, match=names):
        action(session, corpus)
    unchanged(before, session)


def test_7_non_utf8_text_names_the_file(tmp_path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 ".encode("latin-1") * 500)
    with pytest.raises(ValueError, match=r"latin1\.txt.*not utf-8 .*offset 3"):
        Session(str(path))


def test_7_language_model_save_gives_the_real_reason(tmp_path) -> None:
    """A language model on a built-in corpus saves (issue 18, test_lm_persist.py); on a
    user's own text file the refusal says why."""
    path = tmp_path / "own.txt"
    path.write_text("some text of my own, " * 100)
    s = Session(str(path), "gpt-tiny", layers=1, max_train_windows=32, device="cpu")
    with pytest.raises(ValueError, match="language-model session on your own text"):
        s.save(tmp_path / "lm.pt")
    assert not (tmp_path / "lm.pt").exists()


def test_7_numpy_scalars_count_like_python_numbers() -> None:
    a, b = small_session(), small_session()
    snap_a = a.prune(sparsity=np.float32(0.5), std=None)
    snap_b = b.prune(sparsity=0.5)
    assert snap_a.sparsity == snap_b.sparsity and a.slot.prune_config == b.slot.prune_config
    assert type(a.slot.prune_config.sparsity) is float
    a.train(steps=np.int64(2), batch_size=np.int32(32), lr=np.float32(1e-3))
    b.train(steps=2, batch_size=32, lr=float(np.float32(1e-3)))
    assert same(a.slot.base, b.slot.base)
    assert a.students.soft_targets(np.int64(3), student=None)["index"] == 3


# ----- item 4: jobs that fail leave nothing behind ------------------------------------
def test_4_batchnorm_batch_of_one_is_refused_before_work() -> None:
    s = Session("digits", bn_model(), device="cpu")
    n = len(s.data.train)
    before = fingerprint(s)
    with pytest.raises(ValueError, match=f"batch_size {n - 1}.*BatchNorm1d"):
        s.train(epochs=1, batch_size=n - 1)
    unchanged(before, s)


@pytest.mark.parametrize("job", ["train", "prune_iteratively", "distill"])
def test_4_an_exception_inside_a_job_leaves_no_trace(job) -> None:
    s = Session("digits", FailsAt(k=40), device="cpu") if job == "train" else small_session()
    s.prune(sparsity=0.4)
    before = fingerprint(s)
    with pytest.raises(RuntimeError, match="boom|callback failed"):
        if job == "train":
            s.train(epochs=3)  # the 40th batch (third epoch) raises inside the model
        elif job == "prune_iteratively":  # fails in the second step's fine-tune
            s.prune_iteratively(0.6, steps=3, finetune_epochs=1, on_event=fail_at_step(25))
        else:
            s.students.distill(0.25, steps=5, on_event=fail_at_step(3))
    unchanged(before, s)
    assert "student" not in getattr(s, "slots", {})


# ----- item 5: one job at a time, for every public mutating method ----------------------
GUARDED = [
    ("prune", lambda s: s.prune(sparsity=0.9)),
    ("prune_per_layer", lambda s: s.pruning.per_layer({s.slot.prunable[0]: 0.5})),
    ("install_masks", lambda s: s.pruning.install_masks(
        {s.slot.prunable[0]: torch.ones_like(s.slot.base[s.slot.prunable[0]], dtype=torch.bool)})),
    ("rewind_to", lambda s: s.pruning.rewind_to("init")),
    ("adopt_as_original", lambda s: s.pruning.adopt_as_original()),
    ("undo", lambda s: s.undo()), ("reset", lambda s: s.reset()),
    ("reset_pruning", lambda s: s.reset_pruning()),
    ("select", lambda s: s.select("student")),
    ("train", lambda s: s.train(steps=1)),
    ("prune_iteratively", lambda s: s.prune_iteratively(0.5, steps=1, finetune_epochs=0)),
    ("distill", lambda s: s.students.distill(0.25, steps=1)),
    ("train_student_alone", lambda s: s.students.train_alone(0.25, steps=1)),
    ("trial", lambda s: s.trial().__enter__()),
]


@pytest.fixture(scope="module")
def held() -> tuple[Session, threading.Event]:
    """A session with a student whose training job is held at its first step."""
    s = small_session()
    s.students.distill(0.25, epochs=1)
    started, release = threading.Event(), threading.Event()

    def hold(event):
        started.set()
        release.wait(300)

    worker = threading.Thread(target=lambda: s.train(epochs=1, on_event=hold))
    worker.start()
    assert started.wait(120)
    yield s
    release.set()
    worker.join(300)


@pytest.mark.parametrize("row", GUARDED, ids=[f"#5 {r[0]}" for r in GUARDED])
def test_5_mutating_methods_refuse_during_a_job(row, held) -> None:
    before = fingerprint(held)
    with pytest.raises(ValueError, match=r"a job is running \(training\)"):
        row[1](held)
    unchanged(before, held)


# ----- item 6: divergence restores the weights from before the job ----------------------
def test_6_divergence_restores_the_state_before_the_job(session) -> None:
    before = fingerprint(session)
    events: list = []
    session.train(epochs=2, lr=5.0, optimizer="sgd", on_event=events.append)
    assert isinstance(events[-1], StopEvent) and events[-1].reason.startswith(DIVERGED)
    unchanged(before, session)


# ----- item 9: a student larger than its teacher gets a warning ------------------------
def test_9_a_student_larger_than_the_teacher_is_warned_about(session) -> None:
    s = small_session()
    with pytest.warns(UserWarning, match=r"\d+\.\dx the teacher's parameters"):
        snap = s.students.distill(4.0, steps=1)
    assert any("the teacher's parameters" in w for w in snap.warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s.students.distill(0.5, steps=1)  # a smaller student: not a word


# ----- CLI rows: exit 2, the value named, nothing run ------------------------------------
CLI = [
    (7, "seed 10**400", ["run", "--seed", str(BIG)], "--seed.*401 characters"),
    (7, "epochs 10**400", ["run", "--epochs", str(BIG)], "--epochs.*401 characters"),
    (7, "sparsity 10**400", ["run", "--prune-sparsity", str(BIG)], "--prune-sparsity"),
    (7, "batch 5000 digits", ["run", "--batch-size", "9" * 5000], "--batch-size.*5000 char"),
    (7, "sweep seed 10**400", ["sweep", "--grid", f"seed={BIG}"], "401 digits"),
    (8, "run --json /proc", ["run", "--json", "/proc/x.json"], "/proc/x.json.*pseudo"),
    (8, "run --export /sys", ["run", "--export", "/sys/kernel/x.pt"], "/sys/kernel/x.pt"),
    (8, "run --json /proc/self/comm", ["run", "--json", "/proc/self/comm"], "/proc/self"),
    (8, "run --json /dev/null", ["run", "--json", "/dev/null"], "not a regular file"),
    (8, "sweep --csv /sys", ["sweep", "--grid", "sparsity=0.5", "--csv", "/sys/x.csv"],
     "/sys/x.csv"),
    (8, "sensitivity --json /proc", ["sensitivity", "--json", "/proc/s.json"], "/proc/s"),
    (8, "run --rewind 5 --epochs 1", ["run", "--epochs", "1", "--prune-sparsity", "0.5",
                                      "--rewind", "5"], "--rewind: 5 .*--epochs 1"),
    (8, "run --rewind 0", ["run", "--prune-sparsity", "0.5", "--rewind", "0"],
     "--rewind.*'0'"),
    (8, "sweep rewind=5", ["sweep", "--grid", "sparsity=0.5", "--grid", "rewind=5"],
     "rewind.*got 5"),
    (8, "sweep 20,000 points", ["sweep", "--grid", "sparsity=" + ",".join(["0.5"] * 20),
                                "--grid", "lr=" + ",".join(["0.001"] * 1000)], "20,000"),
]


@pytest.mark.parametrize("row", CLI, ids=[f"#{r[0]} {r[1]}" for r in CLI])
def test_cli(row, capsys, monkeypatch) -> None:
    import explorer.cli.studies as studies
    import explorer.studies.pipeline as pipeline

    def no_work(*_a, **_k):
        raise AssertionError("the command started working before refusing")

    monkeypatch.setattr(pipeline, "run_pipeline", no_work)
    monkeypatch.setattr(studies, "_baseline", no_work)
    try:
        code = cli_main(row[2])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(row[3], err), err
    assert "Traceback" not in err


# ----- app handler rows -----------------------------------------------------------------
@pytest.fixture(scope="module")
def app() -> ExplorerApp:
    return ExplorerApp(small_session())


def status(app: ExplorerApp) -> str:
    return html.unescape(app.c.status.value)


def feed(upload, data: bytes, name: str) -> list:
    """The messages a browser sends for `data`, in chunks; the kernel's replies."""
    replies: list = []
    upload.send = lambda content, buffers=None: replies.append(content)
    upload._handle_custom_msg({"kind": "start", "id": "t", "name": name,
                               "size": len(data)}, [])
    for offset in range(0, len(data), upload.chunk_bytes):
        upload._handle_custom_msg({"kind": "chunk", "id": "t", "offset": offset},
                                  [memoryview(data[offset:offset + upload.chunk_bytes])])
    upload._handle_custom_msg({"kind": "end", "id": "t", "name": name, "size": len(data)},
                              [])
    return replies


APP_LOADS = [
    (2, "compression bomb 0.5 MB -> 512 MiB", "would expand"),
    (2, "aliased undo x2000", "2000 undo entries"),
    (3, "history [1, 2, 3]", "history record 0"),
    (3, "epoch record without val_loss", "lacks val_loss"),
    (3, "float masks", "masks are boolean"),
    (7, "width 10**400", "401 digits"),
]


@pytest.mark.parametrize("row", APP_LOADS, ids=[f"#{r[0]} upload {r[1]}" for r in APP_LOADS])
def test_app_refuses_bad_uploads_and_keeps_the_session(row, app, corpus) -> None:
    _, case_id, names = row
    session, before = app.session, fingerprint(app.session)
    feed(app.model_panel.files.upload, corpus(case_id), "crafted.pt")
    assert app.session is session
    assert "error:" in status(app) and "crafted.pt" in status(app), status(app)
    assert re.search(names, status(app)), status(app)
    unchanged(before, session)


def test_1_app_takes_a_large_upload_in_chunks_and_refuses_one_over_the_cap(app) -> None:
    """The handler with the bytes a browser sends (the Chromium run is in
    test_browser_upload.py): many 1 MiB messages, each acknowledged; too big: refused
    before any chunk, the session in use kept."""
    upload = app.model_panel.files.upload
    s = small_session()
    s.train(epochs=1, batch_size=512)  # a second undo step: past one chunk (equal states
    data = s.to_bytes()  # are written once, so one step's file fits in 1 MiB)
    replies = feed(upload, data, "again.pt")
    assert "loaded again.pt" in status(app), status(app)
    assert [r["kind"] for r in replies].count("ack") == -(-len(data) // upload.chunk_bytes) > 1
    session, before = app.session, fingerprint(app.session)
    upload._handle_custom_msg({"kind": "too_big", "name": "huge.pt",
                               "size": upload.max_bytes + 1}, [])
    assert "error: huge.pt is 200.0 MiB; uploads are limited to 200 MiB" in status(app)
    upload._handle_custom_msg({"kind": "start", "id": "u", "name": "liar.pt",
                               "size": upload.max_bytes + 1}, [])
    assert app.session is session and "liar.pt" in status(app)
    unchanged(before, session)


def test_4_app_job_that_fails_shows_the_unchanged_model() -> None:
    app = ExplorerApp(Session("digits", bn_model(), device="cpu"))  # other layer names
    before = fingerprint(app.session)
    app.model_panel.batch.value = len(app.session.data.train) - 1
    app.start_training()
    assert app.jobs.wait(120)
    assert "error:" in status(app) and "batch_size" in status(app), status(app)
    unchanged(before, app.session)


def test_5_app_upload_during_a_job_is_refused(app, corpus) -> None:
    started, release = threading.Event(), threading.Event()

    def hold(event):
        started.set()
        release.wait(120)

    app.adopt_session(small_session())
    app.jobs.start("held", lambda stop, ev: app.session.train(epochs=1, on_event=hold))
    try:
        assert started.wait(120)
        session, before = app.session, fingerprint(app.session)
        assert not app.model_panel.files.load_bytes(corpus("deflated but honest"), "ok.pt")
        assert "a job is running" in status(app), status(app)
        unchanged(before, session)
    finally:
        release.set()
        app.jobs.wait(120)


def test_6_app_says_diverged_and_shows_the_weights_from_before(app) -> None:
    app.adopt_session(small_session())
    before = fingerprint(app.session)
    app.model_panel.opt.value = "sgd"
    app.c.lr.value, app.c.epochs.value = 5.0, 2
    assert app.start_training()
    assert app.jobs.wait(120)
    assert "diverged" in status(app), status(app)
    unchanged(before, app.session)
    app.model_panel.opt.value = "adam"
    app.c.lr.value = 1e-3
