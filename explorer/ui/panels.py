"""The Prune tab's layout and the Data & model panel.

Changing the data set or model builds a new Session; when that would throw work away
(pruning, jobs, students) the first click asks and the second confirms.
"""

from __future__ import annotations

import ipywidgets as W

from .. import config as C
from ..session.core import available_devices
from ..session.session import Session
from .controls import NARROW, STYLE, Controls, button, int_box, tagged
from .files_panel import FilesPanel
from .host import Host

# The language-model track (issue 10): pydoc-text goes with gpt-tiny.
DATASETS = C.ALL_DATASETS
MODELS = C.ALL_MODELS


def prune_panel(c: Controls) -> W.VBox:
    hint = W.HTML('<div class="cx-note">The slider prunes at once from the dense weights '
                  '(move it back to undo). <i>Prune and fine-tune</i> reaches the slider\'s '
                  'sparsity over several steps, retraining at a tenth of the learning rate '
                  'after each; masks only grow.</div>')
    return W.VBox([
        W.HBox([c.mode, c.scope]),
        W.HBox([c.slider, c.structured, c.norm]),
        W.HBox([c.schedule, c.steps, c.finetune_epochs, c.rewind]),
        W.HBox([c.prune_once, c.prune_finetune, c.reset_pruning, c.layer, c.log_y]),
        hint,
    ])


class ModelPanel:
    """Data set, model, width, init, optimizer, batch size, device; New session."""

    def __init__(self, host: Host) -> None:
        self.host = host
        cfg = host.session.config
        self.dataset = tagged(W.Dropdown(options=DATASETS, value=cfg.get("dataset", "digits")
                                         if cfg.get("dataset") in DATASETS else "digits",
                                         description="Data set", style=STYLE), "dataset")
        self.model = tagged(W.Dropdown(options=MODELS, value=cfg.get("model", "mlp")
                                       if cfg.get("model") in MODELS else "mlp",
                                       description="Model", style=STYLE), "model")
        self.width = tagged(W.BoundedFloatText(value=1.0, min=0.05, max=8.0, step=0.25,
                                               description="Width x", layout=NARROW,
                                               style=STYLE), "width")
        self.init = tagged(W.Dropdown(options=C.INITS, value="default", description="Init",
                                      layout=NARROW, style=STYLE), "init")
        self.opt = tagged(W.Dropdown(options=C.OPTIMIZERS, value="adam",
                                     description="Optimizer", layout=NARROW, style=STYLE),
                          "optimizer")
        self.batch = int_box("Batch size", "batch-size", 64, 1, C.BATCH_SIZE_MAX)
        devices = available_devices()
        self.device = tagged(W.Dropdown(options=devices, value=devices[-1],
                                        description="Device", layout=NARROW, style=STYLE),
                             "device")
        self.new = button("New session", "new-session", "danger")
        self.new.on_click(lambda _: self.new_session())
        self._armed = False
        note = W.HTML('<div class="cx-note">A new session starts from a fresh model; '
                      'the digits MLP loads trained, others start untrained (press Train). '
                      f'Devices here: {", ".join(devices)}.</div>')
        self.files = FilesPanel(host)  # issue 8: save, load, export without file paths
        self.box = W.VBox([W.HBox([self.dataset, self.model, self.width, self.init]),
                           W.HBox([self.opt, self.batch, self.device, self.new]), note,
                           self.files.box])

    def controls(self) -> list[W.Widget]:
        return [self.dataset, self.model, self.width, self.init, self.device, self.new]

    def optimizer(self) -> str:
        return self.opt.value

    def batch_size(self) -> int:
        return self.batch.value

    def _has_work(self) -> bool:
        s = self.host.session
        return bool(s.undo_stack or s.masks is not None or len(getattr(s, "models", ())) > 1)

    def new_session(self) -> bool:
        """Build the chosen session; asks once before throwing work away."""
        if self._has_work() and not self._armed:
            self._armed = True
            self.new.description = "Confirm: discard work"
            self.host.set_status("this discards your pruning, jobs and students: "
                                 "click again to confirm", error=True)
            return False
        self._armed = False
        self.new.description = "New session"
        args = dict(dataset=self.dataset.value, model=self.model.value, width=self.width.value,
                    init=self.init.value, device=self.device.value)

        def build(stop, on_event):
            return Session(**args)

        def adopt(result) -> str:
            self.host.adopt_session(result.value)
            trained = "trained" if result.value.pretrained else "untrained: press Train"
            return f"new session: {args['model']} on {args['dataset']} ({trained})"

        return self.host.jobs.start("loading", build, on_done=adopt)
