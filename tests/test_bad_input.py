"""Bad input everywhere, one row per case: the API and the command line (the widgets'
rows are in test_bad_widget_input.py).

API rows must raise ValueError whose message names the value; CLI rows exit with status 2
and name the value on stderr. After every refused row the session is unchanged, compared
bit for bit.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

from explorer import Session
from explorer.cli.main import main as cli_main
from explorer.studies.sensitivity import sensitivity
from explorer.studies.tradeoff import sparsity_sweep, temperature_sweep

NAN, INF = math.nan, math.inf


@dataclass(frozen=True)
class Row:
    id: str
    action: Callable[..., Any]  # api: f(session); cli: argv list; widget: f(app)
    names: str  # regex the message must contain (the value, usually)
    outcome: str = "error"  # error | clamp | warn | disabled


def api(id_, action, names):
    return pytest.param(Row(id_, action, names), id=id_)


def xy(n=40, features=6, classes=2):
    return torch.randn(n, features), torch.arange(n) % classes


class NoPrunable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(64, 10))

    def forward(self, x):
        return x @ self.w


API_ROWS = [
    api("prune sparsity -0.1", lambda s: s.prune(sparsity=-0.1), "-0.1"),
    api("prune sparsity 1.5", lambda s: s.prune(sparsity=1.5), "1.5"),
    api("prune sparsity nan", lambda s: s.prune(sparsity=NAN), "nan"),
    api("prune sparsity str", lambda s: s.prune(sparsity="0.5"), "'0.5'"),
    api("prune sparsity bool", lambda s: s.prune(sparsity=True), "True"),
    api("prune threshold -1", lambda s: s.prune(threshold=-1.0), "-1.0"),
    api("prune threshold inf", lambda s: s.prune(threshold=INF), "inf"),
    api("prune std nan", lambda s: s.prune(std=NAN), "nan"),
    api("prune no mode", lambda s: s.prune(), "got none"),
    api("prune two modes", lambda s: s.prune(threshold=0.1, sparsity=0.5), "threshold, sparsity"),
    api("prune scope", lambda s: s.prune(sparsity=0.5, scope="everywhere"), "'everywhere'"),
    api("prune std global", lambda s: s.prune(std=1.0, scope="global"), "global"),
    api("structured + threshold", lambda s: s.prune(threshold=0.1, structured=True),
        "structured"),
    api("structured + global", lambda s: s.prune(sparsity=0.5, structured=True,
                                                 scope="global"), "scope='layer'"),
    api("structured str", lambda s: s.prune(sparsity=0.5, structured="yes"), "'yes'"),
    api("norm l3", lambda s: s.prune(sparsity=0.5, structured=True, norm="l3"), "'l3'"),
    api("train lr 50", lambda s: s.train(lr=50), "50"),
    api("train lr 0", lambda s: s.train(lr=0), "got 0"),
    api("train lr -1", lambda s: s.train(lr=-1e-3), "-0.001"),
    api("train lr nan", lambda s: s.train(lr=NAN), "nan"),
    api("train lr inf", lambda s: s.train(lr=INF), "inf"),
    api("train epochs 0", lambda s: s.train(epochs=0), "got 0"),
    api("train epochs 2.5", lambda s: s.train(epochs=2.5), "2.5"),
    api("train epochs str", lambda s: s.train(epochs="3"), "'3'"),
    api("train batch 0", lambda s: s.train(batch_size=0), "batch_size.*0"),
    api("train batch 1e9", lambda s: s.train(batch_size=10**9), "1000000000"),
    api("train optimizer", lambda s: s.train(optimizer="adagrad"), "'adagrad'"),
    api("train weight decay", lambda s: s.train(weight_decay=-1.0), "-1.0"),
    api("train stop str", lambda s: s.train(epochs=1, stop="x"), "'x'"),
    api("train on_event", lambda s: s.train(epochs=1, on_event=3), "3"),
    api("iterative target 1.5", lambda s: s.prune_iteratively(1.5), "1.5"),
    api("iterative steps 0", lambda s: s.prune_iteratively(0.5, steps=0), "got 0"),
    api("iterative steps 2.5", lambda s: s.prune_iteratively(0.5, steps=2.5), "2.5"),
    api("iterative schedule", lambda s: s.prune_iteratively(0.5, schedule="cubic"),
        "'cubic'"),
    api("iterative finetune -1", lambda s: s.prune_iteratively(0.5, finetune_epochs=-1),
        "-1"),
    api("iterative rewind 99", lambda s: s.prune_iteratively(0.5, rewind=99), "99"),
    api("iterative rewind str", lambda s: s.prune_iteratively(0.5, rewind="start"),
        "'start'"),
    api("iterative lr nan", lambda s: s.prune_iteratively(0.5, lr=NAN), "nan"),
    api("distill student 0", lambda s: s.students.distill(student=0, epochs=1), "got 0"),
    api("distill student -1", lambda s: s.students.distill(student=-1.0, epochs=1), "-1.0"),
    api("distill student nan", lambda s: s.students.distill(student=NAN, epochs=1), "nan"),
    api("distill student 100", lambda s: s.students.distill(student=100.0, epochs=1), "100.0"),
    api("distill student tiny", lambda s: s.students.distill(student=0.001, epochs=1), "0.001"),
    api("distill temperature 0.5", lambda s: s.students.distill(temperature=0.5, epochs=1), "0.5"),
    api("distill temperature inf", lambda s: s.students.distill(temperature=INF, epochs=1), "inf"),
    api("distill alpha 1.5", lambda s: s.students.distill(alpha=1.5, epochs=1), "1.5"),
    api("distill alpha nan", lambda s: s.students.distill(alpha=NAN, epochs=1), "nan"),
    api("distill epochs 0", lambda s: s.students.distill(epochs=0), "got 0"),
    api("distill t_squared str", lambda s: s.students.distill(t_squared="no", epochs=1), "'no'"),
    api("distill seed -1", lambda s: s.students.distill(seed=-1, epochs=1), "-1"),
    api("distill other outputs", lambda s: s.students.distill(student=nn.Linear(64, 3), epochs=1),
        "3 outputs but the teacher has 10"),
    api("alone width 0.001", lambda s: s.students.train_alone(0.001, epochs=1), "0.001"),
    api("alone epochs -1", lambda s: s.students.train_alone(0.5, epochs=-1), "-1"),
    api("soft index -1", lambda s: s.students.soft_targets(-1, student=None), "-1"),
    api("soft index 1e6", lambda s: s.students.soft_targets(10**6, student=None), "1000000"),
    api("soft index 1.5", lambda s: s.students.soft_targets(1.5, student=None), "1.5"),
    api("soft temperature 0", lambda s: s.students.soft_targets(0, 0.0, student=None), "got 0.0"),
    api("soft temperature nan", lambda s: s.students.soft_targets(0, NAN, student=None), "nan"),
    api("soft student slot", lambda s: s.students.soft_targets(0, student="teacher"), "'teacher'"),
    api("select unknown", lambda s: s.select("nobody"), "'nobody'"),
    api("select empty slot", lambda s: s.select("student"), "no student model"),
    api("export kind", lambda s: s.export("/tmp/x.pt", kind="onnx"), "'onnx'"),
    api("export folder missing", lambda s: s.export("/nonexistent/dir/x.pt"),
        "/nonexistent/dir/x.pt"),
    api("export path None", lambda s: s.export(None), "None"),
    api("measure split", lambda s: s.measure("bogus"), "'bogus'"),
    api("snapshot split", lambda s: s.snapshot("holdout"), "'holdout'"),
    api("undo nothing", lambda s: s.undo(), "nothing to undo"),
    api("sweep level 1.5", lambda s: sparsity_sweep(s, levels=[0.1, 1.5]), "1.5"),
    api("sweep no levels", lambda s: sparsity_sweep(s, levels=[]), "empty"),
    api("T sweep empty", lambda s: temperature_sweep(s, temperatures=[]), "empty"),
    api("sensitivity level 2", lambda s: sensitivity(s, [0.5, 2.0]), "2.0"),
    api("sensitivity empty", lambda s: sensitivity(s, []), "empty"),
    api("sensitivity epochs -1", lambda s: sensitivity(s, [0.5], finetune_epochs=-1), "-1"),
    api("per-layer unknown layer", lambda s: s.pruning.per_layer({"fc9.weight": 0.5}),
        "'fc9.weight'"),
    api("per-layer sparsity nan", lambda s: s.pruning.per_layer({s.slot.prunable[0]: NAN}), "nan"),
    api("load missing", lambda s: Session.load("/nonexistent/s.pt"), "no such file"),
    api("Session dataset", lambda s: Session("cifar"), "'cifar'"),
    api("Session model", lambda s: Session("digits", "vgg"), "'vgg'"),
    api("Session width -1", lambda s: Session("digits", width=-1.0), "-1.0"),
    api("Session width nan", lambda s: Session("digits", width=NAN), "nan"),
    api("Session width inf", lambda s: Session("digits", width=INF), "inf"),
    api("Session init", lambda s: Session("digits", init="zeros"), "'zeros'"),
    api("Session seed -1", lambda s: Session("digits", seed=-1), "-1"),
    api("Session seed nan", lambda s: Session("digits", seed=NAN), "nan"),
    api("Session seed str", lambda s: Session("digits", seed="a"), "'a'"),
    api("Session device tpu", lambda s: Session("digits", device="tpu"), "'tpu'"),
    api("Session device cuda", lambda s: Session("digits", device="cuda")
        if not torch.cuda.is_available() else Session("digits", device="cuda:99"), "cuda"),
    api("Session hidden 0", lambda s: Session("digits", hidden=(0,)), r"\(0,\)"),
    api("Session pretrained str", lambda s: Session("digits", pretrained="yes"), "'yes'"),
    api("Session data and tensors", lambda s: Session("digits", train=xy(), val=xy()),
        "'digits'"),
    api("Session train only", lambda s: Session(train=xy()), "val="),
    api("Session task", lambda s: Session(train=xy(), val=xy(), task="ranking"), "'ranking'"),
    api("data feature shapes", lambda s: Session(train=xy(), val=xy(features=7)),
        r"\(7,\).*\(6,\)"),
    api("data rows", lambda s: Session(train=(torch.randn(40, 6), torch.zeros(39).long()),
                                       val=xy()), "40 rows but y has 39"),
    api("data single class", lambda s: Session(train=xy(classes=1), val=xy()),
        "at least two classes"),
    api("data NaN inputs", lambda s: Session(
        train=(torch.full((40, 6), NAN), torch.arange(40) % 2), val=xy()), "NaN"),
    api("data float labels", lambda s: Session(train=(torch.randn(40, 6), torch.rand(40)),
                                               val=xy()), "float32"),
    api("data negative labels", lambda s: Session(
        train=(torch.randn(40, 6), torch.arange(40) % 2 - 1), val=xy()), "-1"),
    api("model no prunable", lambda s: Session("digits", NoPrunable()), "no prunable"),
    api("model wrong outputs", lambda s: Session("digits", nn.Linear(64, 3)), r"\(2, 3\)"),
]


def state_of(session: Session) -> dict:
    """Everything a refused call must leave alone, cloned."""
    clone = lambda d: {k: v.detach().clone() for k, v in d.items()}  # noqa: E731
    return {"model": clone(session.model.state_dict()), "base": clone(session.slot.base),
            "masks": None if session.slot.masks is None else clone(session.slot.masks),
            "undo": [clone(e.base) for e in session.slot.undo_stack],
            "config": session.slot.prune_config,
            "history": len(session.history), "steps": session.jobs.total_steps,
            "slots": session.slots.names, "selected": session.selected}


def assert_same(before: dict, after: dict) -> None:
    def same(a, b):
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        if isinstance(a, torch.Tensor):
            return torch.equal(a, b)
        return a == b

    assert before.keys() == after.keys()
    for key in before:
        assert same(before[key], after[key]), f"{key} changed"


@pytest.fixture(scope="module")
def session() -> Session:
    s = Session("digits", "mlp", device="cpu")
    s.prune(sparsity=0.3)  # some state to keep
    return s


@pytest.mark.parametrize("row", API_ROWS)
def test_api(row: Row, session: Session) -> None:
    before = state_of(session)
    with pytest.raises(ValueError, match=row.names):
        row.action(session)
    assert_same(before, state_of(session))


# ----- command line --------------------------------------------------------------------
def cli(id_, argv, names):
    return pytest.param(Row(id_, argv, names), id=id_)


CLI_ROWS = [
    cli("run lr 50", ["run", "--lr", "50"], "--lr.*'50'"),
    cli("run lr nan", ["run", "--lr", "nan"], "--lr.*'nan'"),
    cli("run lr -1", ["run", "--lr", "-1"], "--lr.*'-1'"),
    cli("run lr word", ["run", "--lr", "fast"], "--lr.*'fast'"),
    cli("run epochs 0", ["run", "--epochs", "0"], "--epochs.*'0'"),
    cli("run epochs 2.5", ["run", "--epochs", "2.5"], "--epochs.*'2.5'"),
    cli("run batch 0", ["run", "--batch-size", "0"], "--batch-size.*'0'"),
    cli("run batch huge", ["run", "--batch-size", "99999999"], "--batch-size.*'99999999'"),
    cli("run sparsity 1.5", ["run", "--prune-sparsity", "1.5"], "--prune-sparsity.*'1.5'"),
    cli("run sparsity inf", ["run", "--prune-sparsity", "inf"], "--prune-sparsity.*'inf'"),
    cli("run threshold -1", ["run", "--prune-threshold", "-1"], "--prune-threshold.*'-1'"),
    cli("run std nan", ["run", "--prune-std", "nan"], "--prune-std.*'nan'"),
    cli("run two modes", ["run", "--prune-std", "1", "--prune-sparsity", "0.5"],
        "not allowed with"),
    cli("run temperature 0.5", ["run", "--student", "0.5", "--temperature", "0.5"],
        "--temperature.*'0.5'"),
    cli("run temperature inf", ["run", "--student", "0.5", "--temperature", "inf"],
        "--temperature.*'inf'"),
    cli("run alpha 2", ["run", "--student", "0.5", "--alpha", "2"], "--alpha.*'2'"),
    cli("run student 0", ["run", "--student", "0"], "--student.*'0'"),
    cli("run student -1", ["run", "--student", "-1"], "--student.*'-1'"),
    cli("run width 0", ["run", "--width", "0"], "--width.*'0'"),
    cli("run seed -1", ["run", "--seed", "-1"], "--seed.*'-1'"),
    cli("run steps 0", ["run", "--prune-sparsity", "0.5", "--steps", "0"], "--steps.*'0'"),
    cli("run rewind -1", ["run", "--prune-sparsity", "0.5", "--rewind", "-1"],
        "--rewind.*'-1'"),
    cli("run finetune 0", ["run", "--prune-sparsity", "0.5", "--finetune-epochs", "0"],
        "--finetune-epochs.*'0'"),
    cli("run dataset", ["run", "--dataset", "cifar"], "'cifar'"),
    cli("run model", ["run", "--model", "vgg"], "'vgg'"),
    cli("run optimizer", ["run", "--optimizer", "adagrad"], "'adagrad'"),
    cli("run device", ["run", "--device", "tpu"], "'tpu'"),
    cli("run json folder", ["run", "--json", "/nonexistent/r.json"], "/nonexistent/r.json"),
    cli("run temperature alone", ["run", "--temperature", "4"], "--temperature.*--student"),
    cli("run structured alone", ["run", "--structured"], "--structured"),
    cli("run std global", ["run", "--prune-std", "1", "--scope", "global"], "global"),
    cli("run regression T", ["run", "--dataset", "toy-regression", "--student", "0.5",
                             "--temperature", "2"], "--temperature: 2"),
    cli("run regression cnn", ["run", "--dataset", "toy-regression", "--model", "lenet5"],
        "'lenet5'"),
    cli("dashboard port 0", ["dashboard", "--port", "0"], "--port.*'0'"),
    cli("dashboard port 70000", ["dashboard", "--port", "70000"], "--port.*'70000'"),
    cli("dashboard port -1", ["dashboard", "--port", "-1"], "--port.*'-1'"),
    cli("dashboard port nan", ["dashboard", "--port", "nan"], "--port.*'nan'"),
    cli("dashboard port word", ["dashboard", "--port", "http"], "--port.*'http'"),
    cli("dashboard host empty", ["dashboard", "--host", " "], "--host.*' '"),
    cli("dashboard notebook", ["dashboard", "/nonexistent/x.ipynb"], "/nonexistent/x.ipynb"),
    cli("unknown command", ["serve"], "'serve'"),
]


@pytest.mark.parametrize("row", CLI_ROWS)
def test_cli(row: Row, capsys) -> None:
    try:
        code = cli_main(row.action)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(row.names, err), err


def test_cli_refuses_before_importing_torch() -> None:
    """A bad option costs an argument parse, not a torch import."""
    code = ("import sys\nfrom explorer.cli.main import main\n"
            "try:\n    main(['run', '--lr', 'nan'])\nexcept SystemExit as e:\n"
            "    assert e.code == 2\nassert 'torch' not in sys.modules, 'torch imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "'nan'" in done.stderr
