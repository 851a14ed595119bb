"""The app's widgets, with ranges read from explorer.config and stable classes.

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
NARROW = W.Layout(width="190px")
# Dropdown values are strings (None shows as a blank box); rewind_value() converts.
REWIND_OPTIONS = [("no rewind", "none"), ("to init (lottery ticket)", "init"),
                  ("to epoch 1", "1"), ("to epoch 2", "2"), ("to epoch 5", "5")]
STYLE = {"description_width": "90px"}


def tagged(widget: W.Widget, name: str) -> W.Widget:
    widget.add_class(f"cx-{name}")
    return widget


def button(label: str, name: str, style: str = "", tooltip: str = "") -> W.Button:
    return tagged(W.Button(description=label, button_style=style, tooltip=tooltip or label,
                           layout=W.Layout(width="auto")), name)


def int_box(label: str, name: str, value: int, lo: int, hi: int) -> W.BoundedIntText:
    return tagged(W.BoundedIntText(value=value, min=lo, max=hi, description=label,
                                   layout=NARROW, style=STYLE), name)


@dataclass
class Controls:
    """Controls shared by every panel: pruning, training budget, jobs, status."""

    mode: W.ToggleButtons
    slider: W.FloatSlider
    scope: W.ToggleButtons
    structured: W.Checkbox
    norm: W.ToggleButtons
    schedule: W.Dropdown
    steps: W.BoundedIntText
    finetune_epochs: W.BoundedIntText
    rewind: W.Dropdown
    layer: W.Dropdown
    log_y: W.Checkbox
    epochs: W.BoundedIntText
    lr: W.BoundedFloatText
    prune_once: W.Button
    prune_finetune: W.Button
    reset_pruning: W.Button
    undo: W.Button
    train: W.Button
    stop: W.Button
    reset: W.Button
    progress: W.IntProgress
    status: W.HTML
    summary: W.HTML


def build_controls(layers: list[str]) -> Controls:
    lo, hi, step, fmt = SLIDER_RANGES["sparsity"]
    return Controls(
        mode=tagged(W.ToggleButtons(options=MODE_LABELS, value="sparsity",
                                    description="Prune by", style=STYLE), "mode"),
        slider=tagged(W.FloatSlider(value=0.0, min=lo, max=hi, step=step,
                                    readout_format=fmt, continuous_update=False,
                                    description="sparsity", style=STYLE,
                                    layout=W.Layout(width="460px")), "prune-slider"),
        scope=tagged(W.ToggleButtons(options=[("per layer", "layer"), ("global", "global")],
                                     value="layer", description="Scope", style=STYLE), "scope"),
        structured=tagged(W.Checkbox(value=False, description="structured (whole neurons)",
                                     indent=False), "structured"),
        norm=tagged(W.ToggleButtons(options=[("L1", "l1"), ("L2", "l2")], value="l1",
                                    description="rank by", style=STYLE), "norm"),
        schedule=tagged(W.Dropdown(options=[("one shot", "oneshot"), ("linear", "linear"),
                                            ("AGP (cubic)", "agp")], value="agp",
                                   description="Schedule", layout=W.Layout(width="230px"),
                                   style=STYLE),
                        "schedule"),
        steps=int_box("Steps", "steps", 3, 1, 50),
        finetune_epochs=int_box("Fine-tune ep.", "finetune-epochs", 2, 0, C.EPOCHS_MAX),
        rewind=tagged(W.Dropdown(options=REWIND_OPTIONS, value="none", description="Rewind",
                                 layout=W.Layout(width="250px"), style=STYLE), "rewind"),
        layer=tagged(W.Dropdown(options=layers, value=layers[0], description="Layer",
                                style=STYLE), "layer"),
        log_y=tagged(W.Checkbox(value=False, description="log y", indent=False), "logy"),
        epochs=int_box("Epochs", "epochs", 3, 1, C.EPOCHS_MAX),
        lr=tagged(W.BoundedFloatText(value=1e-3, min=C.LR_MIN, max=C.LR_MAX, step=1e-4,
                                     description="LR", layout=NARROW, style=STYLE), "lr"),
        prune_once=button("Prune once", "prune-once"),
        prune_finetune=button("Prune and fine-tune", "prune-finetune", "info"),
        reset_pruning=button("Reset pruning", "reset-pruning"),
        undo=button("Undo last job", "undo"),
        train=button("Train", "train", "primary"),
        stop=tagged(W.Button(description="Stop", button_style="warning", disabled=True),
                    "stop"),
        reset=button("Reset to original", "reset", tooltip="the original trained model"),
        progress=tagged(W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="260px")),
                        "progress"),
        status=tagged(W.HTML(value="ready"), "status"),
        summary=tagged(W.HTML(value=""), "sparsity-label"),
    )


def rewind_value(choice: str) -> str | int | None:
    """The Session's rewind argument for a dropdown value."""
    return None if choice == "none" else "init" if choice == "init" else int(choice)


def model_changing(c: Controls) -> list[W.Widget]:
    """Controls disabled while a job runs (Stop stays enabled)."""
    return [c.mode, c.slider, c.scope, c.structured, c.norm, c.schedule, c.steps,
            c.finetune_epochs, c.rewind, c.epochs, c.lr, c.prune_once, c.prune_finetune,
            c.reset_pruning, c.undo, c.train, c.reset]
