"""Criterion, Pattern and Calibration beside the sparsity slider (language models), and
the SparseGPT button (a job: it changes weights, so it lands like training, one Undo away).

Shown for a language model only (gpt-tiny or an hf: causal LM). Magnitude and Wanda are
slider criteria (Wanda ranks by cached dense input norms: a move is a ranking); an N:M
pattern fixes the sparsity at 1 - N/M, so the slider's value is then not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as W

from ..session.calibrated import (
    DEFAULT_CALIBRATION,
    MAX_CALIBRATION,
    pattern_sparsity,  # the UI reaches the core through session
)

CRITERION_OPTIONS = [("magnitude", "magnitude"), ("Wanda (|w| x input norm)", "wanda")]
PATTERN_OPTIONS = [("unstructured", "unstructured"), ("2:4 (GPU sparse)", "2:4"),
                   ("4:8", "4:8")]


@dataclass
class CriteriaControls:
    criterion: W.Dropdown
    pattern: W.Dropdown
    calibration: W.BoundedIntText
    sparsegpt: W.Button
    box: W.HBox

    def widgets(self) -> list[W.Widget]:
        return [self.criterion, self.pattern, self.calibration, self.sparsegpt]

    def kwargs(self, sparsity: float | None) -> dict:
        """Session.prune's extra arguments; {} for plain magnitude, unstructured."""
        crit, pattern = self.criterion.value, self.pattern.value
        if crit == "magnitude" and pattern == "unstructured":
            return {}
        fixed = pattern_sparsity(pattern)
        return {"sparsity": sparsity if fixed is None else None, "criterion": crit,
                "pattern": pattern, "calibration": int(self.calibration.value)}

    def show(self, language_model: bool) -> None:
        display = "" if language_model else "none"
        if self.box.layout.display != display:
            self.box.layout.display = display


def build_criteria() -> CriteriaControls:
    style = {"description_width": "initial"}
    criterion = W.Dropdown(options=CRITERION_OPTIONS, value="magnitude",
                           description="Criterion", style=style,
                           layout=W.Layout(width="260px"))
    pattern = W.Dropdown(options=PATTERN_OPTIONS, value="unstructured",
                         description="Pattern", style=style, layout=W.Layout(width="230px"))
    calibration = W.BoundedIntText(value=DEFAULT_CALIBRATION, min=1, max=MAX_CALIBRATION,
                                   description="Calibration", style=style,
                                   layout=W.Layout(width="170px"))
    sparsegpt = W.Button(description="SparseGPT (job)",
                         tooltip="prune to the slider's sparsity (or the pattern) and update "
                                 "the surviving weights; one Undo away")
    for widget, name in ((criterion, "criterion"), (pattern, "pattern"),
                         (calibration, "calibration"), (sparsegpt, "sparsegpt")):
        widget.add_class(f"cx-{name}")
    box = W.HBox([criterion, pattern, calibration, sparsegpt],
                 layout=W.Layout(flex_flow="row wrap", width="100%", display="none"))
    box.add_class("cx-criteria")
    return CriteriaControls(criterion, pattern, calibration, sparsegpt, box)
