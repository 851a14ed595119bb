"""The app's control widgets, with ranges read from explorer.config and stable classes.

Every widget a test or a user may need to find carries a `cx-...` CSS class.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as W

from .. import config as C

SLIDER_RANGES = {  # mode -> (min, max, step, readout format)
    "sparsity": (C.SPARSITY_MIN, C.SPARSITY_MAX, 0.01, ".2f"),
    "threshold": (C.THRESHOLD_MIN, C.THRESHOLD_SLIDER_MAX, 0.001, ".3f"),
    "std": (C.STD_MIN, C.STD_SLIDER_MAX, 0.05, ".2f"),
}
MODE_LABELS = [("target sparsity", "sparsity"), ("threshold |w|", "threshold"),
               ("x layer std", "std")]


def tagged(widget: W.Widget, name: str) -> W.Widget:
    widget.add_class(f"cx-{name}")
    return widget


@dataclass
class Controls:
    mode: W.ToggleButtons
    slider: W.FloatSlider
    scope: W.ToggleButtons
    layer: W.Dropdown
    log_y: W.Checkbox
    epochs: W.BoundedIntText
    lr: W.BoundedFloatText
    train: W.Button
    stop: W.Button
    reset: W.Button
    progress: W.IntProgress
    status: W.HTML
    summary: W.HTML

    def model_changing(self) -> list[W.Widget]:
        """Controls disabled while a job runs (Stop stays enabled)."""
        return [self.mode, self.slider, self.scope, self.epochs, self.lr, self.train,
                self.reset]


def build_controls(layers: list[str]) -> Controls:
    lo, hi, step, fmt = SLIDER_RANGES["sparsity"]
    wide = W.Layout(width="420px")
    return Controls(
        mode=tagged(W.ToggleButtons(options=MODE_LABELS, value="sparsity",
                                    description="Prune by"), "mode"),
        slider=tagged(W.FloatSlider(value=0.0, min=lo, max=hi, step=step,
                                    readout_format=fmt, continuous_update=False,
                                    description="sparsity", layout=wide), "prune-slider"),
        scope=tagged(W.ToggleButtons(options=[("per layer", "layer"), ("global", "global")],
                                     value="layer", description="Scope"), "scope"),
        layer=tagged(W.Dropdown(options=layers, value=layers[0], description="Layer"),
                     "layer"),
        log_y=tagged(W.Checkbox(value=False, description="log y", indent=False), "logy"),
        epochs=tagged(W.BoundedIntText(value=3, min=1, max=C.EPOCHS_MAX,
                                       description="Epochs", layout=W.Layout(width="160px")),
                      "epochs"),
        lr=tagged(W.BoundedFloatText(value=1e-3, min=C.LR_MIN, max=C.LR_MAX, step=1e-4,
                                     description="LR", layout=W.Layout(width="180px")), "lr"),
        train=tagged(W.Button(description="Train", button_style="primary"), "train"),
        stop=tagged(W.Button(description="Stop", button_style="warning", disabled=True),
                    "stop"),
        reset=tagged(W.Button(description="Reset"), "reset"),
        progress=tagged(W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="300px")),
                        "progress"),
        status=tagged(W.HTML(value="ready"), "status"),
        summary=tagged(W.HTML(value=""), "sparsity-label"),
    )
