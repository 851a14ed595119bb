"""The Data & model panel: data set, model, width, init, optimizer, batch size, device.

Changing the data set or model builds a new Session in the background; when that would
throw work away (pruning, jobs, students) the first click on New session asks and a
second click on the same button confirms.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W

from .. import config as C
from ..session.core import available_devices
from ..session.session import Session
from .confirm import Confirm
from .controls import STYLE, button, control_on_first_use, full, int_box, narrow, row, tagged
from .files_panel import FilesPanel
from .host import Host

DATASETS = C.ALL_DATASETS
MODELS = C.ALL_MODELS


def choices(names: tuple[str, ...] | list[str], current: object,
            default: str) -> tuple[list, str]:
    """(options, value) of a data set / model dropdown: the zoo's names, plus the session's
    own ``imagefolder:PATH`` / ``hf:PATH`` (labelled by the folder's name) when it has one,
    so the panel names what is open and New session can reopen it. (label, value) pairs
    only then: ipywidgets takes all pairs or all plain values, not a mix."""
    if isinstance(current, str) and current.startswith(("imagefolder:", "hf:")):
        prefix, _, path = current.partition(":")
        own = (f"{prefix}: {path.rstrip('/').rsplit('/', 1)[-1]}", current)
        return [(n, n) for n in names] + [own], current
    return list(names), str(current) if current in names else default


OPTIMIZER, BATCH_SIZE = "adam", 64  # the choices shown before anyone changes them
# The tab's controls, made when the tab first opens (as the Distill tab's, which see).
CONTROLS = ("dataset", "model", "width", "init", "opt", "batch", "device", "new", "confirm",
            "files")


class ModelPanel:
    """Data set, model, width, init, optimizer, batch size, device; New session."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.built = False
        self.box = tagged(W.VBox([]), "model-tab")  # the controls go in on build()

    def __getattr__(self, name: str) -> Any:
        return control_on_first_use(self, name, CONTROLS)

    def build(self) -> None:
        """Make the tab's controls, naming the session open now (once)."""
        if self.built:
            return
        self.built = True  # first: the controls' own set-up must not build again
        host = self.host
        cfg = host.session.slot.config
        data_options, data = choices(DATASETS, cfg.get("dataset"), "digits")
        self.dataset = tagged(W.Dropdown(options=data_options, value=data,
                                         description="Data set", style=STYLE, layout=full()),
                              "dataset")
        model_options, model = choices(MODELS, cfg.get("model"), "mlp")
        self.model = tagged(W.Dropdown(options=model_options, value=model,
                                       description="Model", style=STYLE, layout=full()), "model")
        self.width = tagged(W.BoundedFloatText(value=1.0, min=0.05, max=8.0, step=0.25,
                                               description="Width x", layout=narrow(),
                                               style=STYLE), "width")
        self.init = tagged(W.Dropdown(options=C.INITS, value="default", description="Init",
                                      layout=narrow(), style=STYLE), "init")
        self.opt = tagged(W.Dropdown(options=C.OPTIMIZERS, value=OPTIMIZER,
                                     description="Optimizer", layout=narrow(), style=STYLE),
                          "optimizer")
        self.batch = int_box("Batch size", "batch-size", BATCH_SIZE, 1, C.BATCH_SIZE_MAX)
        devices = available_devices()
        self.device = tagged(W.Dropdown(options=devices, value=devices[-1],
                                        description="Device", layout=narrow(), style=STYLE),
                             "device")
        self.new = button("New session", "new-session", "danger")
        self.new.on_click(host.guard(lambda _: self.new_session()))
        self.model.observe(host.guard(self._on_model), names="value")
        self.confirm = Confirm(self.new, "Confirm: discard work")
        note = W.HTML('<div class="cx-note">A new session starts from a fresh model; '
                      'the digits MLP loads trained, others start untrained (press Train). '
                      f'Devices here: {", ".join(devices)}.</div>')
        self.files = FilesPanel(host)  # save, load, export without file paths
        self.box.children = [self.dataset, self.model,
                             row(self.width, self.init, self.opt, self.batch, self.device),
                             row(self.new), note, self.files.box]
        if host.jobs.busy:  # opened during a job: its controls wait like the rest
            host.set_busy(True)

    def controls(self) -> list[W.Widget]:
        if not self.built:
            return []
        return [self.dataset, self.model, self.width, self.init, self.device, self.new]

    def adopt(self, session: Session) -> None:
        """Name what is open now (after Load or New session: the selects kept the last
        choice), and drop a download link of the session that was open before."""
        if not self.built:  # build() names the session open then
            return
        cfg = session.slot.config
        model_options, model = choices(MODELS, cfg.get("model"), "mlp")
        data_options, data = choices(DATASETS, cfg.get("dataset"), "digits")
        self.model.options, self.model.value = model_options, model  # may pick a data set,
        self.dataset.options, self.dataset.value = data_options, data  # so this goes last
        self.files.link.value = ""
        self._disarm()

    def optimizer(self) -> str:
        return self.opt.value if self.built else OPTIMIZER

    def batch_size(self) -> int:
        return self.batch.value if self.built else BATCH_SIZE

    def _on_model(self, change: dict) -> None:
        """Pick a data set the new model can read (a user may choose another that fits)."""
        model, data = change["new"], self.dataset.value
        if str(model).startswith("hf:"):  # your own model: its data set is yours to pick
            self._disarm()
            return
        if model in C.GPT_MODELS:
            self.dataset.value = C.TEXT_DATASETS[0]
        elif data in C.TEXT_DATASETS or (model in C.IMAGE_MODELS and data == "toy-regression"):
            self.dataset.value = "digits"
        self._disarm()

    def _disarm(self) -> None:
        self.confirm.disarm()

    def _has_work(self) -> bool:
        s = self.host.session
        return bool(s.slot.undo_stack or s.slot.masks is not None or len(s.slots) > 1)

    def new_session(self) -> bool:
        """Build the chosen session; asks once before throwing work away."""
        if not self.confirm.go(self._has_work(), lambda: self.host.set_status(
                "this discards your pruning, jobs and students: click again to confirm",
                error=True)):
            return False
        args = dict(dataset=self.dataset.value, model=self.model.value, width=self.width.value,
                    init=self.init.value, device=self.device.value)

        def build(stop, on_event):
            return Session(**args)

        def adopt(result) -> str:
            self.host.adopt_session(result.value)
            trained = "trained" if result.value.pretrained else "untrained: press Train"
            return f"new session: {args['model']} on {args['dataset']} ({trained})"

        return self.host.jobs.start("loading", build, on_done=adopt,
                                    who=f"{args['model']} on {args['dataset']}")
