"""Hinton et al. 2015's missing digit: a transfer set with no 3, then the 3's logit bias.

The paper (section 3, MNIST): the 2x800 student distilled at T = 20 from a transfer set
with every 3 removed made 206 test errors, 133 of them on the 1,010 threes; raising the
bias of the 3's logit by 3.5 (a value the paper picked for the best overall test accuracy;
we pick it on validation) brought it to 109 errors, 14 on threes. Our test split is
smaller, so we compare error rates. The student alone gets the same 3-less training set
(labels only) and the same correction, so its row says what the teacher's soft answers on
other digits taught the distilled student about the 3s it never saw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import DEFAULT_LEAVE_OUT_CLASS
from .stats import fmt, paired, summarize

if TYPE_CHECKING:
    from ..session.session import Session

PAPER = {"class": 3, "test_images": 10_000, "class_images": 1010,
         "errors_before": 206, "class_errors_before": 133, "bias": 3.5,
         "errors_after": 109, "class_errors_after": 14,
         "error_before": 206 / 10_000, "class_error_before": 133 / 1010,
         "error_after": 109 / 10_000, "class_error_after": 14 / 1010}
SLOTS = (("alone", "student_alone"), ("distilled", "student"))


def readout(session: Session, slot: str, cls: int) -> dict:
    """One student's test per-class accuracy before and after the bias chosen on
    validation (Session.bias_correction), and the error rates they imply."""
    fix = session.students.bias_correction(slot, cls)
    return {"bias": fix["bias"],
            "per_class_before": fix["per_class_before"],
            "per_class_after": fix["per_class_after"],
            "test_error_before": 1 - fix["test_accuracy_before"],
            "test_error_after": 1 - fix["test_accuracy_after"],
            "class_error_before": 1 - fix["per_class_before"][cls],
            "class_error_after": 1 - fix["per_class_after"][cls]}


def run_seed(session: Session, student: Any, seed: int, temperature: float, alpha: float,
             budget: dict, cls: int = DEFAULT_LEAVE_OUT_CLASS) -> dict:
    """Alone and distilled students with class `cls` out of their transfer set (all
    other labels kept), each read out before and after its bias correction."""
    common = {"seed": seed, "labelled": 1.0, "leave_out": cls, **budget}
    session.students.train_alone(student, **common)
    session.students.distill(student, temperature=temperature, alpha=alpha, **common)
    return {"class": cls, "temperature": temperature,
            **{name: readout(session, slot, cls) for name, slot in SLOTS}}


def combine(per_seed: list[dict]) -> dict | None:
    """Over seeds: every error rate's mean and interval, the bias values, and the paired
    gain of distillation on the left-out class (alone minus distilled error)."""
    found = [p.get("left_out_class") for p in per_seed]
    runs = [r for r in found if r is not None]
    if len(runs) < len(found) or not runs:
        return None
    out: dict = {"class": runs[0]["class"], "temperature": runs[0]["temperature"],
                 "paper": PAPER}
    for name, _ in SLOTS:
        rows = [r[name] for r in runs]
        out[name] = {key: summarize([row[key] for row in rows])
                     for key in ("test_error_before", "test_error_after",
                                 "class_error_before", "class_error_after", "bias")}
        n = len(rows[0]["per_class_before"])
        out[name]["per_class_before"] = [summarize([row["per_class_before"][c] for row in rows])
                                         for c in range(n)]
        out[name]["per_class_after"] = [summarize([row["per_class_after"][c] for row in rows])
                                        for c in range(n)]
    for when in ("before", "after"):
        out[f"class_error_alone_minus_distilled_{when}"] = paired(
            [r["alone"][f"class_error_{when}"] for r in runs],
            [r["distilled"][f"class_error_{when}"] for r in runs])
    return out


def format_rows(result: dict | None) -> str:
    """The table beside the paper's rates (ours: mean [95% interval] over seeds, %)."""
    if result is None:
        return ""
    from .common import table

    cls = result["class"]
    p = PAPER
    rows = []
    for name in ("alone", "distilled"):
        r = result[name]
        paper = name == "distilled"
        rows.append((f"{name}, no {cls} in transfer set",
                     fmt(r["test_error_before"], digits=2), fmt(r["class_error_before"], digits=1),
                     f"{p['error_before']:.2%} / {p['class_error_before']:.1%}" if paper else ""))
        rows.append((f"{name}, + bias {fmt(r['bias'], scale=1.0, digits=2)} on {cls}",
                     fmt(r["test_error_after"], digits=2), fmt(r["class_error_after"], digits=1),
                     f"{p['error_after']:.2%} / {p['class_error_after']:.1%} (bias 3.5)"
                     if paper else ""))
    body = table((f"missing digit {cls} (test error, %)", "ours: all",
                  f"ours: on {cls}s", f"paper: all / on {cls}s"), rows)
    gain = result["class_error_alone_minus_distilled_before"]
    return (f"{body}\nerror on {cls}s, alone minus distilled (before the bias): "
            f"{fmt(gain, digits=1, key='mean_diff')} points; the bias is chosen on "
            "validation (the paper's 3.5 on test).")
