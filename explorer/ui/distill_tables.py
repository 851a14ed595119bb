"""The Distill tab's tables, as HTML: the students side by side, and the Sweep T result.

Pure functions of plain rows (no widgets, no session), so a test can read what a person
reads. The sweep table has one row per swept temperature; the selected row (the one the
temperature slider shows) carries `cx-selected` and a marker, and every row names its T in
`data-t` for the browser tests.
"""

from __future__ import annotations

import html

from ..studies.stats import fmt

SELECTED_MARK = "&#9654;"  # the row the slider shows


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ece(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def students_table(rows: list[dict], metric: str) -> str:
    """rows: {"label", "value" (text), "agreement", "ece", "nonzero", "regime"}; each
    regime (Regime.describe) is named once under the table, with the models it trained."""
    if len(rows) < 2:
        return ""
    body = "".join(
        f"<tr><td style='text-align:left'>{html.escape(r['label'])}</td>"
        f"<td>{r['value']}</td><td>{_pct(r.get('agreement'))}</td>"
        f"<td>{_ece(r.get('ece'))}</td><td>{r['nonzero']:,}</td></tr>"
        for r in rows)
    regimes: dict[str, list[str]] = {}
    for r in rows:
        if r.get("regime"):
            regimes.setdefault(r["regime"], []).append(r["label"])
    notes = "".join(f"<div class='cx-note cx-regime-of'>{html.escape(', '.join(labels))}: "
                    f"{html.escape(text)}</div>" for text, labels in regimes.items())
    return ('<table class="cx-table cx-students"><tr><th style="text-align:left">model</th>'
            f"<th>val {html.escape(metric)}</th><th>agrees with teacher</th>"
            f"<th>ECE</th><th>nonzero params</th></tr>{body}</table>{notes}")


def _diff_cell(comparison: dict | None, metric: str) -> str:
    """Distilled minus alone, paired over seeds: mean [95% interval] and its verdict."""
    if comparison is None:
        return "-"
    scale, digits, unit = (100.0, 1, " pts") if metric == "accuracy" else (1.0, 3, "")
    sign = "+" if comparison["mean_diff"] >= 0 else ""
    text = f"{sign}{fmt(comparison, scale=scale, digits=digits, key='mean_diff')}{unit}"
    verdict = comparison["verdict"]
    if metric != "accuracy" and verdict in ("higher", "lower"):
        verdict += " perplexity"
    return f"{text} ({html.escape(verdict)})"


def sweep_table(sweep, selected: float | None) -> str:
    """One row per swept T: mean [95% interval] over seeds, vs alone, agreement."""
    if sweep is None or not sweep.rows:
        return ""
    metric = sweep.metric
    scale, digits = (100.0, 1) if metric == "accuracy" else (1.0, 2)
    unit = "%" if metric == "accuracy" else ""
    n = len(sweep.seeds)
    alone = "-" if sweep.alone is None else f"{fmt(sweep.alone, scale, digits)}{unit}"
    rows = []
    for r in sweep.rows:
        chosen = r["temperature"] == selected
        mark = SELECTED_MARK if chosen else ""
        klass = "cx-sweep-row cx-selected" if chosen else "cx-sweep-row"
        bold = " style='font-weight:bold'" if chosen else ""
        rows.append(
            f"<tr class='{klass}' data-t='{r['temperature']:g}'{bold}>"
            f"<td style='text-align:left'>{mark} T = {r['temperature']:g}</td>"
            f"<td>{fmt(r['summary'], scale, digits)}{unit}</td>"
            f"<td>{_diff_cell(r['vs_alone'], metric)}</td>"
            f"<td>{_pct(r.get('agreement'))}</td></tr>")
    head = (f"val {metric}" + (", mean [95% interval]" if n > 1 else "")
            + f" over {n} seed{'s' if n > 1 else ''}")
    stale = "" if sweep.live else (" <i>(a later distillation replaced the swept "
                                   "students; the numbers stand)</i>")
    regime = f" ({html.escape(sweep.regime)})" if sweep.regime else ""
    first = "; the table above shows each T's first-seed student" if n > 1 and sweep.live \
        else ""
    return (f'<div class="cx-note">Sweep T{regime}: student alone {alone}{first}{stale}'
            '</div>'
            '<table class="cx-table cx-sweep-table"><tr><th style="text-align:left">'
            f"temperature</th><th>{html.escape(head)}</th><th>distilled - alone</th>"
            f"<th>agrees with teacher</th></tr>{''.join(rows)}</table>")
