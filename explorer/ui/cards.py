"""Size-and-speed and quality cards: plain HTML numbers that say what each one means.

The cheap part (counts, dense bytes, bitmask bytes) follows every slider move; the
costly part (best sparse format, shrunk bytes, FLOPs, latency, precision/recall/F1)
is filled in by Measure and after each job.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

import ipywidgets as W

from ..engine.metrics import Snapshot
from .controls import button, tagged
from .host import Host
from .quant_panel import size_rows


def human_bytes(n: float | None) -> str:
    """Bytes in SI units, as `explorer run` prints them (1 kB = 1000 B)."""
    if n is None:
        return "n/a"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {prefix}B"
    return f"{n:,.0f} B"


def bitmask_bytes(snap: Snapshot) -> int:
    """fp32 survivors plus one bit per prunable weight; other parameters dense."""
    prunable = sum(layer.numel for layer in snap.layers)
    stored = sum(math.ceil(layer.numel / 8) + 4 * layer.nonzero for layer in snap.layers)
    return stored + 4 * (snap.params - prunable)


def _number(value: float | None, form: str) -> str:
    """A number, or why there is none (a job's snapshots are not evaluated)."""
    if value is None or not math.isfinite(value):
        return "n/a (not evaluated yet)"
    return form.format(value)


def _row(label: str, value: str, hint: str = "") -> str:
    title = f' title="{html.escape(hint)}"' if hint else ""
    return f"<tr{title}><td>{html.escape(label)}</td><td><b>{value}</b></td></tr>"


def _ms(value: float | None, form: str = "{:.3f}") -> str:
    return "n/a" if value is None else form.format(value) + " ms"


def variants_table(extra: dict) -> str:
    """Measure's numbers side by side (issue 28): bytes and latency of the dense model,
    the masked one (its best sparse format) and the shrunk copy (structured only)."""
    shrunk = extra.get("bytes_shrunk")
    rows = [("dense (fp32)", extra.get("bytes_dense"), "latency_dense_ms"),
            ("masked, best sparse format", extra.get("bytes_sparse"), "latency_ms"),
            ("shrunk (neurons removed)", shrunk, "latency_shrunk_ms")]
    body = "".join(
        f"<tr><td>{html.escape(label)}</td><td><b>"
        f"{human_bytes(n) if n is not None else 'n/a (structured pruning only)'}</b></td>"
        f"<td>{_ms(extra.get(key + '_b1'))}</td><td>{_ms(extra.get(key + '_b256'), '{:.2f}')}"
        "</td></tr>" for label, n, key in rows)
    return ('<table class="cx-variants"><tr><th>at the last Measure</th><th>bytes</th>'
            f'<th>batch 1</th><th>batch 256</th></tr>{body}</table>')


def measured_note(extra: dict) -> str:
    """The size-and-speed note once measured: what the numbers say, never a prompt to
    measure what was measured (the shrunk latency is in the table)."""
    b1, small = extra.get("latency_ms_b1"), extra.get("latency_shrunk_ms_b1")
    if small is None or not b1:
        return extra.get("speedup_note") or ""
    return (f"Whole neurons/channels are pruned: the shrunk copy is physically smaller and "
            f"runs a batch of 1 in {small:.3f} ms against the masked model's {b1:.3f} ms "
            f"({b1 / small:.1f}x) on this machine; the masked model still runs at dense "
            "speed.")


class Cards:
    """Two cards side by side, plus the Measure button."""

    def __init__(self, host: Host, on_measured: Callable[[Snapshot], None]) -> None:
        self.host = host
        self.on_measured = on_measured  # a full Snapshot for the Compare tab's quality plot
        self.size = tagged(W.HTML(), "card-size")
        self.quality = tagged(W.HTML(), "card-quality")
        self.measure = button("Measure (FLOPs, latency, F1)", "measure")
        self.measure.on_click(host.guard(lambda _: self.measure_now()))
        self.measured: dict = {}
        self.box = tagged(W.HBox([self.size, self.quality, self.measure],
                                 layout=W.Layout(flex_flow="row wrap", width="100%")),
                          "cards")

    def show(self, snap: Snapshot, quality: Snapshot | None = None) -> None:
        """Both cards for `snap`; the quality card from `quality` when given (an evaluated
        snapshot of the same model, e.g. Measure's while a job's unevaluated ticks show)."""
        extra = self.measured
        rows = [
            _row("parameters", f"{snap.params:,}"),
            _row("nonzero", f"{snap.nonzero:,} ({snap.nonzero / max(snap.params, 1):.1%})"),
            _row("bytes as bitmask + values", human_bytes(bitmask_bytes(snap)),
                 "what storing only the survivors costs"),
        ]
        if not extra:  # once measured, the table below has it beside the others
            rows.insert(2, _row("bytes dense (fp32)", human_bytes(4 * snap.params)))
        rows += [_row(label, human_bytes(n), hint) for label, n, hint in size_rows(snap.extra)]
        measured = ""
        if extra:
            rows.append(_row("FLOPs dense / effective*",
                             f"{extra.get('flops_dense', 0):,} / "
                             f"{extra.get('flops_effective', 0):,}"))
            measured = variants_table(extra)
        note = html.escape(measured_note(extra)) if extra else (
            "Masked weights are still stored and multiplied: masking alone makes nothing "
            "faster. Press Measure for FLOPs and latency.")
        self.size.value = (f'<div class="cx-card"><b>Size and speed</b><table>{"".join(rows)}'
                           f'</table>{measured}<div class="cx-note">{note}</div></div>')
        self._show_quality(snap if quality is None else quality, extra)

    def _show_quality(self, snap: Snapshot, extra: dict) -> None:
        # Branch on the task, never on a missing accuracy: a job's snapshots are not
        # evaluated (accuracy None, loss nan) whatever the task (issue 15: "val MSE nan").
        if snap.task == "regression":
            rows = [_row("validation MSE", _number(snap.loss, "{:.4f}"))]
        else:
            rows = [_row("validation accuracy", _number(snap.accuracy, "{:.2%}")),
                    _row("validation loss", _number(snap.loss, "{:.4f}"))]
            if snap.extra.get("perplexity") is not None:  # language model: exp(loss)
                rows.append(_row("validation perplexity",
                                 _number(snap.extra["perplexity"], "{:.2f}")))
            for key in ("precision", "recall", "f1"):
                if extra.get(key) is not None:
                    rows.append(_row(f"macro {key}*", f"{extra[key]:.3f}"))
            if extra.get("teacher_agreement") is not None:
                rows.append(_row("agrees with teacher*", f"{extra['teacher_agreement']:.1%}"))
        stale = '<div class="cx-note">* at the last Measure</div>' if extra else ""
        self.quality.value = (f'<div class="cx-card"><b>Quality ({self.host.who()})'
                              f'</b><table>{"".join(rows)}</table>{stale}</div>')

    def measure_now(self, latency: bool = True) -> dict:
        """Full metrics for the selected model (a few hundred ms on small models)."""
        session = self.host.session
        if not hasattr(session, "measure"):
            return {}
        try:
            snap = session.measure(full=True, latency=latency)
        except ValueError as err:
            self.host.set_status(f"error: {err}", error=True)
            return {}
        self.measured = dict(snap.extra)
        self.show(self.host.snap, quality=snap)
        self.on_measured(snap)
        return self.measured

    def forget(self) -> None:
        """The model changed: measured numbers no longer apply."""
        self.measured = {}
