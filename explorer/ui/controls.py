"""The app's widgets, with ranges read from explorer.config and stable classes, and the
rules that say which of them apply now (and why not, in one line).

Every widget a test or a user may need to find carries a `cx-...` CSS class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ipywidgets as W

from .. import config as C
from .criteria import CriteriaControls, build_criteria
from .state import AppState

SLIDER_RANGES = {  # mode -> (min, max, step, readout format)
    "sparsity": (C.SPARSITY_MIN, C.SPARSITY_MAX, 0.01, ".2f"),
    "threshold": (C.THRESHOLD_MIN, C.THRESHOLD_SLIDER_MAX, 0.001, ".3f"),
    "std": (C.STD_MIN, C.STD_SLIDER_MAX, 0.05, ".2f"),
}
MODE_LABELS = [("target sparsity", "sparsity"), ("threshold |w|", "threshold"),
               ("x layer std", "std")]
# Dropdown values are strings (None shows as a blank box); rewind_value() converts.
REWIND_OPTIONS = [("no rewind", "none"), ("to init (lottery ticket)", "init"),
                  ("to epoch 1", "1"), ("to epoch 2", "2"), ("to epoch 5", "5")]
STYLE = {"description_width": "88px"}
STD_IS_PER_LAYER = "x std is a per-layer rule (Han et al.): scope is per layer"
STRUCTURED_NEEDS = "structured pruning takes a target sparsity, per layer"
LM_NO_ITERATIVE = "gpt-tiny: prune with the slider and press Train to fine-tune"


def full() -> W.Layout:
    """A full-width layout of its own. Never share one Layout between widgets: hiding one
    (layout.display = "none") would hide every widget holding it (issue 28: a regression
    session hid its Temperature slider and lost the sparsity slider with it)."""
    return W.Layout(width="100%")


def narrow() -> W.Layout:
    """A 170 px layout of its own (see full)."""
    return W.Layout(width="170px")


def control_on_first_use(panel: Any, name: str, controls: tuple[str, ...]) -> Any:
    """A hidden tab's control `name`, the tab's controls made first if they are not yet (a
    panel's __getattr__: code that reaches a control builds the tab as opening it would)."""
    if name in controls and not panel.__dict__.get("built", True):
        panel.build()
        return panel.__dict__[name]
    raise AttributeError(name)


def tagged(widget: W.Widget, name: str) -> W.Widget:
    widget.add_class(f"cx-{name}")
    return widget


def button(label: str, name: str, style: str = "", tooltip: str = "") -> W.Button:
    return tagged(W.Button(description=label, button_style=style, tooltip=tooltip or label,
                           layout=W.Layout(width="auto", flex="0 0 auto")), name)


def int_box(label: str, name: str, value: int, lo: int, hi: int,
            layout: W.Layout | None = None) -> W.BoundedIntText:
    return tagged(W.BoundedIntText(value=value, min=lo, max=hi, description=label,
                                   layout=layout or narrow(), style=STYLE), name)


def row(*children: W.Widget, name: str = "row") -> W.HBox:
    """A row that wraps instead of squeezing its children (no label is ever cut)."""
    return tagged(W.HBox(list(children), layout=W.Layout(flex_flow="row wrap",
                                                          width="100%")), name)


def reason() -> W.HTML:
    return tagged(W.HTML(""), "reason")


@dataclass
class Controls:
    """Controls shared by every panel: pruning, training budget, jobs, status."""

    mode: W.Dropdown
    slider: W.FloatSlider
    scope: W.ToggleButtons
    structured: W.Checkbox
    norm: W.ToggleButtons
    why_not: W.HTML  # one line: why a pruning control is disabled
    schedule: W.Dropdown
    steps: W.BoundedIntText
    finetune_epochs: W.BoundedIntText
    rewind: W.Dropdown
    layer: W.Dropdown
    log_y: W.Checkbox
    page: W.Dropdown
    curves: W.ToggleButtons
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
    criteria: CriteriaControls = field(default_factory=build_criteria)  # language models


def build_controls(layers: list[str]) -> Controls:
    lo, hi, step, fmt = SLIDER_RANGES["sparsity"]
    toggle = {"button_width": "auto"}
    controls = Controls(
        mode=tagged(W.Dropdown(options=MODE_LABELS, value="sparsity", description="Prune by",
                               style=STYLE, layout=full()), "mode"),
        slider=tagged(W.FloatSlider(value=0.0, min=lo, max=hi, step=step,
                                    readout_format=fmt, continuous_update=True,
                                    description="sparsity", style=STYLE, layout=full()),
                      "prune-slider"),
        scope=tagged(W.ToggleButtons(options=[("per layer", "layer"), ("global", "global")],
                                     value="layer", style=toggle,
                                     tooltips=["one cut per layer", "one cut over all layers"]),
                     "scope"),
        structured=tagged(W.Checkbox(value=False, description="structured (whole neurons)",
                                     indent=False, layout=W.Layout(width="auto")),
                          "structured"),
        norm=tagged(W.ToggleButtons(options=[("rank by L1", "l1"), ("rank by L2", "l2")],
                                    value="l1", style=toggle), "norm"),
        why_not=tagged(W.HTML(""), "why-not"),
        schedule=tagged(W.Dropdown(options=[("one shot", "oneshot"), ("linear", "linear"),
                                            ("AGP (cubic)", "agp")],
                                   value=C.FINETUNE_SCHEDULE, description="Schedule",
                                   layout=W.Layout(width="220px"), style=STYLE), "schedule"),
        steps=int_box("Steps", "steps", C.FINETUNE_STEPS, 1, 50),
        finetune_epochs=int_box("Fine-tune ep.", "finetune-epochs", C.FINETUNE_EPOCHS, 0,
                                C.EPOCHS_MAX),
        rewind=tagged(W.Dropdown(options=REWIND_OPTIONS, value="none", description="Rewind",
                                 layout=W.Layout(width="250px"), style=STYLE), "rewind"),
        layer=tagged(W.Dropdown(options=layers, value=layers[0], description="Layer",
                                style=STYLE, layout=W.Layout(width="260px")), "layer"),
        log_y=tagged(W.Checkbox(value=False, description="log y", indent=False,
                                layout=W.Layout(width="auto")), "logy"),
        page=tagged(W.Dropdown(options=[("all", 0)], value=0, description="Bars",
                               style=STYLE, layout=W.Layout(width="260px", display="none")),
                    "bar-page"),
        curves=tagged(W.ToggleButtons(options=[("teacher", "teacher")], value="teacher",
                                      description="Curves of", style={**STYLE, **toggle}),
                      "curves-of"),
        epochs=int_box("Epochs", "epochs", 3, 1, C.EPOCHS_MAX),
        lr=tagged(W.BoundedFloatText(value=1e-3, min=C.LR_MIN, max=C.LR_MAX, step=1e-4,
                                     description="LR", layout=narrow(), style=STYLE), "lr"),
        prune_once=button("Prune once", "prune-once"),
        prune_finetune=button("Prune and fine-tune", "prune-finetune", "info",
                              "reach the slider's sparsity in steps, fine-tuning after each"),
        reset_pruning=button("Reset pruning", "reset-pruning"),
        undo=button("Undo last job", "undo", tooltip="weights, masks, slider and curves "
                    "as they were before the last job"),
        train=button("Train", "train", "primary"),
        stop=button("Stop", "stop", tooltip="stop the running job; its steps so far are kept"),
        reset=button("Reset to original", "reset", tooltip="the original trained model"),
        progress=tagged(W.IntProgress(value=0, min=0, max=1000,
                                      layout=W.Layout(width="100%")), "progress"),
        status=tagged(W.HTML(value="ready"), "status"),
        summary=tagged(W.HTML(value=""), "sparsity-label"),
    )
    controls.stop.disabled = True  # until a job runs
    return controls


def rewind_value(choice: str) -> str | int | None:
    """The Session's rewind argument for a dropdown value."""
    return None if choice == "none" else "init" if choice == "init" else int(choice)


def model_changing(c: Controls) -> list[W.Widget]:
    """Controls disabled while a job runs (Stop stays enabled)."""
    return [c.mode, c.slider, c.scope, c.structured, c.norm, c.schedule, c.steps,
            c.finetune_epochs, c.rewind, c.epochs, c.lr, c.prune_once, c.prune_finetune,
            c.reset_pruning, c.undo, c.train, c.reset, c.curves]


def apply_rules(c: Controls, state: AppState, busy: bool, is_lm: bool) -> None:
    """Disable what does not apply now and say why in one line (never while a job runs:
    then every model-changing control is disabled anyway); the settings are read from
    `state`, which the controls are linked to."""
    show = "" if state.structured else "none"
    if c.norm.layout.display != show:
        c.norm.layout.display = show
    reasons = []
    if busy:
        return
    std = state.mode == "std"
    c.scope.disabled = std or (state.structured and not is_lm)
    if std:
        reasons.append(STD_IS_PER_LAYER)
    can_structure = state.mode == "sparsity" and (state.scope == "layer" or is_lm)
    c.structured.disabled = not can_structure and not state.structured
    if not can_structure:
        reasons.append(STRUCTURED_NEEDS)
    c.prune_finetune.disabled = is_lm
    c.schedule.disabled = c.steps.disabled = c.rewind.disabled = is_lm
    if is_lm:
        reasons.append(LM_NO_ITERATIVE)
    text = "; ".join(reasons)
    c.why_not.value = f'<div class="cx-reason">{text}</div>' if text else ""
