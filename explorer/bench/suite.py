"""The benchmark suite behind ``explorer bench``: each figure beside its floor, same run.

Ratios are measured pair by pair (app, then floor, back to back) and reported as the
median of the per-pair ratios, so a noisy neighbour slows both sides of a pair alike.
This module runs the figures (explorer.bench.app_figures, .models, .browser, .byo, ...),
prints the table against its targets and holds the subcommand; torch and the models are
imported inside the functions, so that explorer.cli.main can register the subcommand
without importing torch.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..files import write_text
from .app_figures import (
    PEER_SIZES,
    bench_network,
    bench_peer,
    bench_slider_by_params,
    bench_slider_default,
    bench_slider_large,
    bench_temperature,
    bench_train_overhead,
)
from .byo import BYO_KEYS, BYO_TARGETS, byo_figures
from .quant import QUANT_KEYS, QUANT_TARGETS, quant_figures

if TYPE_CHECKING:
    pass

SIZES_FULL = (1e5, 1e6, 1e7, 2.5e7)
# issue 29: a page's own cost in Chromium, beside a one-widget and a one-FigureWidget page
PAGE_KEYS = ("fresh_pages_drawn", "page_script_s", "page_task_s", "page_js_bytes",
             "page_js_decoded_bytes", "page_widget_models", "page_ready_s", "trivial_script_s",
             "trivial_task_s", "trivial_js_bytes", "trivial_widget_models",
             "onefig_ready_preheat_s", "onefig_script_s", "onefig_task_s", "onefig_js_bytes",
             "onefig_widget_models", "page_ready_throttled_s")
BROWSER_KEYS = ("browser_roundtrip_p50_ms", "dashboard_ready_s", "dashboard_ready_preheat_s",
                "trivial_ready_preheat_s", "dashboard_ready_preheat_ratio", "kernel_rss_mib",
                *PAGE_KEYS)
KEYS = ("slider_p50_ms", "slider_p95_ms", "slider_floor_ratio", "train_overhead_ratio",
        "train_overhead_ratio_lenet300", "update_bytes_small", "update_bytes_large",
        "slider_ms_by_params", "structured_speedup_b256", "structured_speedup_b1",
        "masked_speedup_b256", "browser_roundtrip_p50_ms", "dashboard_ready_s",
        "dashboard_ready_preheat_s", "trivial_ready_preheat_s", "dashboard_ready_preheat_ratio",
        "gpu_epoch_speedup", "peer_slider_ratio",
        "peer_slider_ms", "kernel_rss_mib", "visitors_ready_s_p95", "visitors_slider_p95_ms",
        "distill_temperature_p50_ms", "distill_temperature_bytes", *BYO_KEYS, *QUANT_KEYS,
        "llm_wanda_slider_ms", "llm_wanda_full_ms", "llm_sparsegpt_s", "network_update_bytes",
        "network_update_ms", *PAGE_KEYS)


def _step(results: dict, notes: dict, key: str, fn: Callable[[], object]) -> None:
    """Run one measurement; a failure becomes null plus a note, never a lost suite."""
    start = time.perf_counter()
    try:
        value = fn()
    except Exception as err:  # report and go on: one broken figure must not hide the rest
        value = None
        notes[key] = f"failed: {type(err).__name__}: {err}"
    if isinstance(value, dict) and key.startswith("_"):
        results.update(value)
    else:
        results[key] = value
    print(f"  [{time.perf_counter() - start:6.1f} s] {key.lstrip('_')}", flush=True)


def run_bench(quick: bool = False, json_path: str | Path | None = None,
              gpu_check: bool = False, tiny: bool = False, browser: bool | None = None) -> dict:
    """Measure every figure of issue 7; print a table; write JSON when `json_path` is set.

    `tiny` shrinks every model and repeat count (for the test that keeps the suite alive);
    `browser` defaults to on unless quick or tiny. The soak is `soak_command`.
    """
    import torch

    from .models import mlp_session, structured_figures

    if gpu_check:
        from .gpu import gpu_check as run_check

        return {"gpu_check_exit": run_check()}
    browser = (not quick and not tiny) if browser is None else browser
    large = 2e5 if tiny else 1e7
    moves, pairs = (5, 3) if tiny else (15, 5) if quick else (40, 9)
    results: dict = dict.fromkeys(KEYS)
    notes: dict = {}
    print(f"explorer bench ({'tiny' if tiny else 'quick' if quick else 'full'}; "
          f"torch threads {torch.get_num_threads()}; load {_load()})", flush=True)
    _step(results, notes, "_slider_default", lambda: bench_slider_default(moves, tiny))
    _step(results, notes, "_distill_temperature", lambda: bench_temperature(moves))
    _step(results, notes, "_network", lambda: bench_network(moves, tiny, 2e5 if tiny else 1e7))
    big: dict = {}
    _step(results, notes, "slider_floor_ratio",
          lambda: big.update(bench_slider_large(large, pairs)) or big["ratio"])
    results["update_bytes_large"] = big.get("bytes")
    results["large_model_params"] = big.get("params")
    sizes = (2e4, 1e5) if tiny else SIZES_FULL[:3] if quick else SIZES_FULL
    _step(results, notes, "slider_ms_by_params",
          lambda: bench_slider_by_params(sizes, 3 if tiny else 5))
    results["slider_ms_by_params"] = results["slider_ms_by_params"] or None
    _step(results, notes, "_peer", lambda: bench_peer((2e4,) if tiny else PEER_SIZES,
                                                      3 if tiny else 5 if quick else 9))
    epochs = 1 if tiny else 5
    _step(results, notes, "train_overhead_ratio", lambda: bench_train_overhead(
        mlp_session(2e4) if tiny else _default_session(), epochs, pairs))
    _step(results, notes, "train_overhead_ratio_lenet300", lambda: bench_train_overhead(
        _session("digits" if tiny else "mnist-5k", "lenet300"), 1 if tiny else 3, pairs))
    _step(results, notes, "_structured", lambda: structured_figures(tiny, quick))
    _step(results, notes, "_byo", lambda: byo_figures(tiny, quick))  # issue 18 (bench/byo)
    _step(results, notes, "_quant", lambda: quant_figures(tiny, quick))  # issue 31
    from .llm import llm_figures  # issue 30: Wanda slider, SparseGPT job

    if tiny:  # the suite's tiny bench test stays as fast as it was
        notes["llm"] = "skipped (tiny run)"
    else:
        _step(results, notes, "_llm", lambda: llm_figures(False, 9))
    from .gpu import bench_gpu_epoch  # imports torch: not at the CLI's start

    _step(results, notes, "gpu_epoch_speedup", lambda: bench_gpu_epoch(tiny))
    if browser:
        from .browser import browser_figures
        from .pages import page_figures  # page cost and fresh pages (issue 29)

        _step(results, notes, "_browser", lambda: browser_figures(quick, notes, page_figures))
    else:
        notes["browser"] = "skipped (--quick or tiny run)"
    results["meta"] = {"quick": quick, "tiny": tiny, "torch_threads": torch.get_num_threads(),
                       "cpu_count": os.cpu_count(), "load_average": _load(),
                       "torch": torch.__version__, "notes": notes,
                       "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(format_table(results))
    if json_path is not None:
        write_text(json_path, json.dumps(results, indent=2, default=float) + "\n")
        print(f"wrote {json_path}")
    return results


def unmeasured(results: dict) -> list[str]:
    """Figures this run should have measured and did not (null): the exit status says so.
    Browser figures count only when the browser ran; figures a machine cannot give (a
    GPU's, the room's) are never required."""
    meta = results.get("meta", {})
    notes = meta.get("notes", {})
    optional = {"gpu_epoch_speedup", "visitors_ready_s_p95", "visitors_slider_p95_ms",
                "peer_slider_ms", "slider_ms_by_params"}
    if "browser" in notes:  # skipped on purpose (quick or tiny)
        optional |= set(BROWSER_KEYS)
    return [k for k in KEYS if results.get(k) is None and k not in optional
            and not (meta.get("tiny") and k.startswith(("byo_", "llm_")))]


def _default_session():
    from ..session.session import Session

    return Session.default(device="cpu")


def _session(dataset: str, model: str):
    from ..session.session import Session

    return Session(dataset, model, device="cpu", pretrained=False)


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


TARGETS = {"slider_p50_ms": "<= 10", "slider_floor_ratio": "<= 1.3",
           "train_overhead_ratio": "<= 1.10", "train_overhead_ratio_lenet300": "<= 1.10",
           "update_bytes_small": "<= 20000", "update_bytes_large": "<= 20000, <= 1.2x small",
           "structured_speedup_b256": ">= 1.6", "browser_roundtrip_p50_ms": "<= 150",
           "dashboard_ready_s": "<= 10", "dashboard_ready_preheat_s": "<= 5",
           "dashboard_ready_preheat_ratio": "<= 1.3 (ours / trivial notebook)",
           "peer_slider_ratio": "<= 0.2", "peer_slider_ms": "ours vs peer, ms",
           "kernel_rss_mib": "<= 350", "visitors_ready_s_p95": "<= 20 (8 visitors)",
           "visitors_slider_p95_ms": "<= 1500",
           "distill_temperature_p50_ms": "soft targets + dark knowledge, ms", **BYO_TARGETS,
           **QUANT_TARGETS,
           "llm_wanda_slider_ms": "<= 300 first answer (10M LM)",
           "llm_wanda_full_ms": "background, ms", "llm_sparsegpt_s": "job, s",
           "fresh_pages_drawn": "all (k of n)", "page_script_s": "<= 1.2 (CDP ScriptDuration)",
           "page_js_bytes": "<= 5e6 (transferred)",
           "page_js_decoded_bytes": "parsed, bytes",
           "page_ready_throttled_s": "draws at 4x CPU throttling, s",
           "network_update_bytes": "<= 30000 (network panel)",
           "network_update_ms": "<= 50 (network panel, kernel)"}


def _note_for(key: str, notes: dict) -> str:
    """The note that says why `key` is null: its own, or its group's (``_browser``...)."""
    if key in notes:
        return str(notes[key])
    if key in BROWSER_KEYS and "_browser" in notes:
        return str(notes["_browser"])
    failed = [k.lstrip("_") for k, v in notes.items()
              if k.startswith("_") and str(v).startswith("failed")]
    return f"see meta.notes: {', '.join(failed)} failed" if failed else ""


def format_table(results: dict) -> str:
    notes = results.get("meta", {}).get("notes", {})
    lines = [f"{'figure':34} {'value':>14}  target", "-" * 62]
    for key in KEYS:
        value = results.get(key)
        if isinstance(value, dict):
            lines.append(f"{key:34} {'':>14}  {TARGETS.get(key, 'linear in params')}")
            lines.extend(f"  {k:32} {v:14.2f}" for k, v in value.items())
            continue
        if value is None:  # a failed figure says why, here and not only in the JSON
            why = _note_for(key, notes)
            lines.append(f"{key:34} {'null':>14}  {TARGETS.get(key, '')}"
                         + (f"  [{why[:160]}]" if why else ""))
            continue
        text = value if isinstance(value, str) else \
            f"{value:14.3f}" if value < 100 else f"{value:14.0f}"
        lines.append(f"{key:34} {text:>14}  {TARGETS.get(key, '')}")
    return "\n".join(lines)


# ----- command line ------------------------------------------------------------------
def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bench", help="measure slider latency, training overhead, ...",
                              description="Run the benchmark suite; print a table.")
    p.add_argument("--quick", action="store_true",
                   help="under 3 minutes: skips the 25M model and the browser figures")
    p.add_argument("--json", metavar="PATH", default=None, help="also write the figures here")
    p.add_argument("--gpu-check", action="store_true",
                   help="run the whole core on CUDA (train, prune, fine-tune, distil, export)"
                        "; exit 1 with 'no CUDA device' when there is none")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's own choice)")
    p.add_argument("--visitors", type=int, default=None, metavar="N",
                   help="room check instead: N Chromium pages open a --preheat N dashboard at "
                        "once, then each sets its slider every 2 s for 60 s (loopback only)")
    p.add_argument("--preheat", type=int, default=None, metavar="N",
                   help="with --visitors: kernels kept warm (default: as many as visitors)")
    p.add_argument("--soak", action="store_true",
                   help="long-use check instead: 10,000 slider moves and 50 train/stop cycles "
                        "(with --quick: 300 and 25); resident-memory growth and history lengths")
    return p


def bench_command(args: argparse.Namespace) -> int:
    import torch

    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads must be >= 1; got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.soak:
        return soak_command(args.quick, args.json)
    if args.visitors is not None:
        return visitors_command(args.visitors, args.quick, args.json, args.preheat)
    results = run_bench(quick=args.quick, json_path=args.json, gpu_check=args.gpu_check)
    if args.gpu_check:
        return int(results["gpu_check_exit"])
    missed = unmeasured(results)
    if missed:
        print(f"explorer bench: not measured: {', '.join(missed)}", flush=True)
        return 1
    return 0


def visitors_command(n: int, quick: bool, json_path: str | None,
                     preheat: int | None = None) -> int:
    """`explorer bench --visitors N`: a room of N pages (30 s of sliding with --quick)."""
    from .visitors import run_visitors

    if n < 1:
        raise SystemExit(f"--visitors must be >= 1; got {n}")
    print(f"explorer bench --visitors {n} (load {_load()})", flush=True)
    result = run_visitors(n, duration_s=30.0 if quick else 60.0, preheat=preheat)
    result["meta"] = {"cpu_count": os.cpu_count(), "load_average": _load(),
                      "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(json.dumps(result, indent=2))
    if json_path is not None:
        write_text(json_path, json.dumps(result, indent=2) + "\n")
    return 0


def soak_command(quick: bool, json_path: str | None) -> int:
    """`explorer bench --soak`: memory growth and bounded histories under long use."""
    from .soak import run_soak

    result = run_soak(quick=quick)
    print(json.dumps(result, indent=2))
    if json_path is not None:
        write_text(json_path, json.dumps(result, indent=2) + "\n")
    return 0 if result["rss_ok"] and all(result["bounded"].values()) else 1

