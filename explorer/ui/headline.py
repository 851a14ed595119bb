"""The number that matters, big: accuracy (MSE for regression, perplexity for text), with its
change from the dense model, the sparsity, and which model it is about.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

from ..config import BN_RECALIBRATION_SAMPLES
from ..engine.metrics import Snapshot


@dataclass(frozen=True)
class Metric:
    """How the headline quantity is read from a Snapshot or a curve point."""

    name: str  # accuracy | MSE | perplexity
    higher_is_better: bool

    @staticmethod
    def for_session(task: str, is_lm: bool = False) -> Metric:
        """Perplexity for a language model, accuracy for classification, else MSE."""
        if is_lm:
            return Metric("perplexity", False)
        if task == "classification":
            return Metric("accuracy", True)
        return Metric("MSE", False)

    def value(self, snap: Snapshot) -> float | None:
        if self.name == "accuracy":
            return snap.accuracy
        if self.name == "perplexity":
            return _finite(math.exp(min(snap.loss, 50.0))) if _finite(snap.loss) is not None \
                else None
        return _finite(snap.loss)

    def point_value(self, point) -> float | None:
        """A curve point's value (points carry accuracy and loss)."""
        if self.name == "accuracy":
            return point.accuracy
        if self.name == "perplexity":
            return math.exp(min(point.loss, 50.0))
        return point.loss

    def text(self, value: float | None) -> str:
        if value is None:
            return "n/a"
        if self.name == "accuracy":
            return f"{value:.1%}"
        if self.name == "perplexity":
            return f"{value:.2f}"
        return f"{value:.4f}"

    def change(self, value: float | None, dense: float | None) -> str:
        """`value` against the dense model's, in the metric's own unit, with its sense."""
        if value is None or dense is None:
            return ""
        diff = value - dense
        if self.name == "accuracy":
            amount = f"{abs(diff) * 100:.1f} points"
        elif self.name == "perplexity":
            amount = f"{abs(diff):.2f}"
        else:
            amount = f"{abs(diff):.4f}"
        if abs(diff) < (5e-4 if self.name == "accuracy" else 1e-4 * max(abs(dense), 1)):
            return "same as dense"
        better = (diff > 0) == self.higher_is_better
        arrow = "&#9650;" if diff > 0 else "&#9660;"
        klass = "cx-better" if better else "cx-worse"
        return (f'<span class="{klass}">{arrow} {amount}</span> vs dense '
                f"({self.text(dense)})")


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def headline_html(snap: Snapshot, metric: Metric, dense: float | None, who: str,
                  value: float | None = None) -> str:
    """The headline's HTML: big value, change from dense, sparsity and counts.

    `value` (default: read from `snap`) lets a job's unevaluated snapshots keep showing
    the last measured value while the sparsity and counts follow the job."""
    value = metric.value(snap) if value is None else value
    kind = "validation " + metric.name
    if snap.extra.get("eval_samples"):  # a big model's first answer (Session.quick_subset)
        # BatchNorm re-estimated on a few samples only (Session.prune's fast path) is said
        # too: the full-set answer that follows uses all of them
        bn = snap.extra.get("bn_samples", 0)
        few = f", BatchNorm on {bn}" if 0 < bn < BN_RECALIBRATION_SAMPLES else ""
        kind += (f" on {snap.extra['eval_samples']:,} of {snap.extra['eval_total']:,} "
                 f"samples (subset{few}; full set follows)")
    structured = " (structured: whole neurons)" if snap.extra.get("structured") else ""
    return (
        f'<div class="cx-headline"><span class="cx-big">{metric.text(value)}</span>'
        f'<span class="cx-metric">{html.escape(kind)} &middot; {html.escape(who)}</span>'
        f'<span class="cx-change">{metric.change(value, dense)}</span></div>'
        f'<div class="cx-sub">Global sparsity: <b>{snap.sparsity:.1%}</b>{structured} '
        f'&middot; {snap.nonzero:,} of {snap.params:,} parameters nonzero</div>')
