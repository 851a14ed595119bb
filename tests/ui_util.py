"""Helpers for the headless app tests: read the figures the way the page draws them."""

from __future__ import annotations

import html
import re


def trace(fig, name: str):
    (found,) = [t for t in fig.data if t.name == name]
    return found


def bar_counts(app) -> list[tuple[int, int, str]]:
    """(kept, numel, layer) of each bar on the shown page of the sparsity bars."""
    return [tuple(row) for row in trace(app.fig, "kept").customdata]


def pruned_fraction(app, index: int | None = None) -> float:
    """Pruned share of the weights the bars show (all of them, or bar `index`)."""
    rows = bar_counts(app)
    if index is not None:
        rows = rows[index:index + 1]
    return 1 - sum(r[0] for r in rows) / sum(r[1] for r in rows)


def status(app) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", app.c.status.value))


def headline(app) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", " ", app.c.summary.value))
    return re.sub(r"\s+", " ", text).strip()


def settle(app, timeout: float = 120.0) -> None:
    """Wait for the running job (and its pump) and the background curve."""
    assert app.jobs.wait(timeout), status(app)
    assert app.curve.wait(timeout)
    app.display.settle(timeout)
    assert app.display.wait_sample(timeout)
