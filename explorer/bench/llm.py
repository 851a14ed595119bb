"""Bench figures of issue 30: a Wanda slider move and a SparseGPT job on a language model.

`llm_wanda_slider_ms`: p50 of Session.prune(criterion="wanda") moves after the first (the
first measures the dense input norms and ranks each layer's scores once, and caches them;
torch's thread count matters: with two threads on a loaded 2-core machine moves swing by
10x, docs/llm-pruning.md), each the first answer (masks
and a perplexity on a fixed subset of LM_FAST_EVAL_WINDOWS validation windows, as the app
shows it); `llm_wanda_full_ms`: p50 of the full answer that follows (Session.refine, all
windows; the app runs it in the background). `llm_sparsegpt_s`: one SparseGPT 50% job, block
by block, with the longest gap between progress events and the peak RSS beside it
(calibration statistics are held for one block's Linears at a time).
"""

from __future__ import annotations

import resource
import statistics
import time
from typing import Any


def llm_figures(tiny: bool, moves: int) -> dict:
    from ..session.session import Session

    size: dict[str, Any] = dict(layers=2, width=0.25) if tiny else dict(layers=4, width=3.5)
    s = Session("pydoc-text", "gpt-tiny", context=64, max_train_windows=256, **size)
    s.settings.sample_in_snapshots = False  # as in the app: the sample is drawn off the path
    params = sum(p.numel() for p in s.model.parameters())
    s.prune(sparsity=0.5, criterion="wanda", calibration=32)  # norms measured, cached
    times, full = [], []
    for i in range(moves):
        start = time.perf_counter()
        s.prune(sparsity=0.3 + 0.4 * (i % 2), criterion="wanda", calibration=32)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        s.refine()
        full.append(time.perf_counter() - start)
    stamps = [time.perf_counter()]
    s.pruning.one_shot("sparsegpt", 0.5, calibration=32,
                     on_event=lambda _p: stamps.append(time.perf_counter()))
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return {"llm_wanda_slider_ms": 1e3 * statistics.median(times),
            "llm_wanda_full_ms": 1e3 * statistics.median(full),
            "llm_sparsegpt_s": stamps[-1] - stamps[0],
            "llm_sparsegpt_max_progress_gap_s": max(gaps),
            "llm_bench_params": params,
            "llm_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
