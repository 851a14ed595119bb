"""`explorer bench --gpu-check`: the whole core on a CUDA device, stage by stage.

Made for a short spell on a borrowed GPU: each stage runs in its own try/except and
prints PASS/FAIL/SKIP with the error, then a summary. Exit status: 0 when every stage
passed (or was skipped), 1 when any failed, and 1 with "no CUDA device" when there is
no GPU at all (the check did not run, so it cannot have passed).
"""

from __future__ import annotations

import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ..session.session import Session


def _stage(results: list[tuple[str, str, str]], name: str, fn: Callable[[], str]) -> None:
    start = time.perf_counter()
    try:
        detail = fn() or ""
        status = "SKIP" if detail.startswith("skipped") else "PASS"
    except Exception as err:  # report every stage; one failure must not hide the rest
        status, detail = "FAIL", f"{type(err).__name__}: {err}"
        traceback.print_exc()
    seconds = time.perf_counter() - start
    results.append((name, status, detail))
    print(f"{status:4} {name:28} {seconds:6.1f} s  {detail}", flush=True)


def _on_device(session: Session, device: torch.device) -> None:
    for name, p in session.model.named_parameters():
        if p.device.type != device.type:
            raise AssertionError(f"{name} is on {p.device}, not {device}")


def _zeros_kept(session: Session) -> str:
    """Every pruned weight is exactly zero on the device; returns a count."""
    named = dict(session.model.named_parameters())
    pruned = 0
    for name, mask in (session.slot.masks or {}).items():
        bad = int((named[name].detach()[~mask] != 0).sum())
        if bad:
            raise AssertionError(f"{name}: {bad} pruned weights are nonzero after fine-tuning")
        pruned += int((~mask).sum())
    return f"{pruned:,} pruned weights still exactly 0"


def gpu_check(device: str | None = None, dataset: str = "mnist-5k",
              model: str = "lenet5") -> int:
    """Run every core stage on CUDA; print PASS/FAIL lines and a summary; return 0 or 1.

    `device`/`dataset`/`model` exist so a test can run the same stages on the CPU.
    """
    if device is None and not torch.cuda.is_available():
        print("no CUDA device: torch.cuda.is_available() is False; nothing was checked (exit 1)")
        return 1
    from ..session.session import Session

    where_to = torch.device(device or "cuda")
    where = torch.cuda.get_device_name(0) if where_to.type == "cuda" else str(where_to)
    print(f"GPU check on {where} (torch {torch.__version__})")
    results: list[tuple[str, str, str]] = []
    state: dict = {}

    def train() -> str:
        s = Session(dataset, model, device=where_to, pretrained=False)
        _on_device(s, where_to)
        snap = s.train(epochs=2)
        s.pruning.adopt_as_original()
        state["s"] = s
        return f"val accuracy {snap.accuracy:.3f}"

    def prune_unstructured() -> str:
        snap = state["s"].prune(sparsity=0.8, scope="global")
        return f"sparsity {snap.sparsity:.3f}, val accuracy {snap.accuracy:.3f}"

    def finetune() -> str:
        s = state["s"]
        s.train(epochs=1, optimizer="adam", weight_decay=1e-4)
        _on_device(s, where_to)
        return _zeros_kept(s)

    def prune_structured() -> str:
        s = state["s"]
        snap = s.prune(sparsity=0.5, structured=True)
        small = s.shrink()
        x = s.data.val.x[:64]
        with torch.no_grad():
            diff = float((small.eval()(x) - s.model.eval()(x)).abs().max())
        if diff > 1e-3:
            raise AssertionError(f"shrunk and masked outputs differ by {diff}")
        return (f"params removed {snap.extra.get('param_fraction_removed'):.3f}; "
                f"shrunk == masked (max diff {diff:.1e})")

    def distil() -> str:
        s = state["s"]
        snap = s.students.distill(student=0.5, temperature=4.0, alpha=0.5, epochs=1)
        return f"student val accuracy {getattr(snap, 'accuracy', float('nan')):.3f}"

    def export_reload() -> str:
        from ..engine.export import load_exported

        s = state["s"]
        s.prune(sparsity=0.7)
        x = s.data.val.x[:64]
        with torch.no_grad():
            want = s.model.eval()(x)
        lines = []
        with tempfile.TemporaryDirectory() as tmp:
            for kind in ("masked", "zeros", "shrunk"):
                path = Path(tmp) / f"{kind}.pt"
                s.export(path, kind)
                model = load_exported(path).to(where_to)
                with torch.no_grad():
                    diff = float((model.eval()(x) - want).abs().max())
                if diff > 1e-4:
                    raise AssertionError(f"{kind}: reloaded outputs differ by {diff}")
                lines.append(f"{kind} ok")
        return ", ".join(lines)

    def speedup() -> str:
        if where_to.type != "cuda":
            return "skipped: not on CUDA"
        value = bench_gpu_epoch(tiny=False)
        return f"lenet5 mnist-5k epoch: GPU {value:.2f}x faster than CPU"

    for name, fn in (("train", train), ("prune unstructured", prune_unstructured),
                     ("fine-tune with masks", finetune), ("prune structured + shrink",
                                                          prune_structured),
                     ("distil", distil), ("export and reload", export_reload),
                     ("epoch speedup vs CPU", speedup)):
        if name != "train" and "s" not in state and name != "epoch speedup vs CPU":
            results.append((name, "FAIL", "no session (train failed)"))
            print(f"FAIL {name:28}          no session (train failed)")
            continue
        _stage(results, name, fn)
    failed = [r for r in results if r[1] == "FAIL"]
    print(f"summary: {sum(r[1] == 'PASS' for r in results)} passed, {len(failed)} failed, "
          f"{sum(r[1] == 'SKIP' for r in results)} skipped")
    return 1 if failed else 0


def bench_gpu_epoch(tiny: bool) -> float | None:
    """Epoch of lenet5 on mnist-5k on CUDA vs CPU (bare loop), None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    from ..data.datasets import load_dataset
    from ..models.zoo import build_model
    from .models import bare_epochs

    times = {}
    for device in ("cuda", "cpu"):
        data = load_dataset("mnist-5k", device=device)
        model = build_model("lenet5", data.input_shape, data.n_outputs,
                            image_shape=data.image_shape).to(device)
        bare_epochs(model, data.train, {}, 1, 1e-3)  # warm-up (cuDNN autotune, allocator)
        times[device] = bare_epochs(model, data.train, {}, 1 if tiny else 2, 1e-3)
    return times["cpu"] / times["cuda"]


# ----- the suite ---------------------------------------------------------------------
