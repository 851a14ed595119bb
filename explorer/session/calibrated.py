"""Pruning with calibration data and N:M patterns: the Session's collaborator.

Three kinds of request, all from the dense base:
- magnitude with an N:M pattern, and Wanda (either pattern) on the slider: a move is a
  ranking. Wanda's input-feature norms are measured once per (base, calibration size,
  seed) on the dense model and cached, and so are the ranks of the scores (one sort per
  layer, engine.criteria.ranking: the latest criterion and pattern only, to bound
  memory); a move then compares ranks with a count, and the masks are installed like
  magnitude's.
- SparseGPT changes the surviving weights, so it runs as a job (`run_sparsegpt`): block by
  block (engine.oneshot), Stop checked between blocks and within one (before each
  calibration batch, each layer, after each column block: a stopped job puts the state
  back as it was), progress after each column block and each block, then it
  lands like training: the updated survivors become the base (pruned entries keep their
  old base values), the previous base goes on the undo stack (one Undo away).
- sequential Wanda (the papers' form, each block's norms from the already-pruned blocks
  before it) is the same job with criterion "wanda"; it changes no weight, so it installs
  masks without a commit.
Calibration rows: `calibration` training windows (or rows, for an image MLP) drawn with
the seed. Calibration criteria reach nn.Linear layers only; a model with prunable
convolutions is refused (use magnitude there).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch

from ..config import PerLayerConfig, check_number
from ..engine.calibrate import dense_norms
from ..engine.criteria import (
    CRITERIA,
    PATTERNS,
    Ranking,
    parse_pattern,
    pattern_sparsity,
    ranking,
)
from ..engine.metrics import Snapshot
from ..engine.oneshot import OneShotProgress, linear_names, one_shot
from ..engine.prune import MaskResult
from ..engine.rankstats import RankedStats, ranked_stats
from ..engine.sparsegpt import DEFAULT_BLOCKSIZE, DEFAULT_DAMP
from . import core
from .slots import clone_state

if TYPE_CHECKING:
    from .host import Host

DEFAULT_CALIBRATION = 32  # windows (the papers use 128 of 2048 tokens; ours are small)
MAX_CALIBRATION = 4096
CALIBRATION_BATCH = 8


@dataclass(frozen=True)
class Request:
    """A validated calibration-pruning request."""

    criterion: str
    pattern: str
    sparsity: float
    calibration: int
    seed: int | None = None  # of the calibration draw; None: the session's


def check_request(sparsity: float | None, criterion: object, pattern: object,
                  calibration: object) -> Request:
    """ValueError naming the bad value; N:M fixes the sparsity at 1 - N/M."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}; got {criterion!r}")
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {', '.join(PATTERNS)}; got {pattern!r}")
    implied = pattern_sparsity(str(pattern))
    if implied is not None:
        if sparsity is not None and abs(float(sparsity) - implied) > 1e-9:
            raise ValueError(f"pattern {pattern} prunes exactly {implied:.0%}; got "
                             f"sparsity={sparsity} (give sparsity=None or {implied})")
        sparsity = implied
    if sparsity is None:
        raise ValueError(f"criterion {criterion!r} needs sparsity= (a fraction in [0, 1])")
    value = float(check_number("sparsity", sparsity, 0.0, 1.0))
    calib = DEFAULT_CALIBRATION if calibration is None else int(check_number(
        "calibration", calibration, 1, MAX_CALIBRATION, integer=True))
    return Request(str(criterion), str(pattern), value, calib)


class CalibratedPruning:
    """Calibration draws and the cached dense Wanda norms of one session."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._base_ref: Any = None  # the base dict the norms were taken on (id reuse)
        self._norms: dict[str, torch.Tensor] = {}
        self._rank_key: tuple | None = None
        self._rank_base: Any = None
        self._rankings: dict[str, Ranking] = {}
        self._stats: dict[str, RankedStats] = {}  # the rankings' count tables

    # ----- what the criteria reach -----------------------------------------------------
    @staticmethod
    def targets(session: Host) -> list[str]:
        names = list(session.slot.prunable)
        linear = linear_names(session.model, names)
        others = [n for n in names if n not in linear]
        if others:
            raise ValueError(f"calibration criteria prune Linear layers; {others[0]} is not "
                             "one (prune convolutions with criterion='magnitude')")
        return linear

    @staticmethod
    def batches(session: Host, calibration: int, seed: int | None = None
                ) -> list[torch.Tensor]:
        """`calibration` training rows drawn with the seed, in batches."""
        x = session.data.train.x
        gen = torch.Generator().manual_seed(session.seed if seed is None else seed)
        idx = torch.randperm(len(x), generator=gen)[:calibration].to(x.device)
        rows = x[idx]
        return list(torch.split(rows, CALIBRATION_BATCH))

    def norms(self, session: Host, calibration: int, seed: int | None = None
              ) -> dict[str, torch.Tensor]:
        """Dense input-feature norms, cached per (base, calibration size, seed)."""
        slot = session.slot
        seed = session.seed if seed is None else seed
        key = (id(slot), id(slot.base), calibration, seed)
        if key != self._key or self._base_ref is not slot.base:
            masks, config = slot.masks, slot.prune_config
            slot.clear_masks()  # the dense model's inputs
            try:
                self._norms = dense_norms(slot.model, self.targets(session),
                                          self.batches(session, calibration, seed))
            finally:
                slot.reapply(masks, config)
            self._key, self._base_ref = key, slot.base
        return self._norms

    def rankings(self, session: Host, req: Request) -> dict[str, Ranking]:
        """Per layer, the scores of `req`'s criterion and pattern ranked once (cached while
        the base, and for Wanda the calibration draw, stay the same)."""
        slot = session.slot
        wanda = req.criterion == "wanda"
        norms = self.norms(session, req.calibration, req.seed) if wanda else {}
        key = (id(slot), req.criterion, req.pattern, self._key if wanda else None)
        if key != self._rank_key or self._rank_base is not slot.base:
            self._rankings, self._stats = {}, {}  # the old ranks go before new ones come
            names = self.targets(session) if wanda else list(slot.prunable)
            self._rankings = {n: ranking(req.criterion, slot.base[n], req.pattern,
                                         norms.get(n)) for n in names}
            tables = {n: ranked_stats(n, slot.base[n], r, slot.base_counts[n],
                                      slot.edges[n]) for n, r in self._rankings.items()}
            self._stats = {n: t for n, t in tables.items() if t is not None}
            self._rank_key, self._rank_base = key, slot.base
        return self._rankings

    # ----- a slider move: magnitude N:M, or Wanda from cached norms ---------------------
    def prune(self, session: Host, req: Request) -> Snapshot:
        with session.lock:
            session.jobs.check_idle("pruning")
            masks = {n: r.mask(req.sparsity)
                     for n, r in self.rankings(session, req).items()}
            stats = {n: t.layer_stats(req.sparsity) for n, t in self._stats.items()}
            session.slot.install_masks(MaskResult(masks, {}), PerLayerConfig(
                sparsity=req.sparsity, scope="layer"), stats)
            # a big model: perplexity on a fixed subset of windows first (the app's
            # Refiner then shows session.refine(), the full answer, in the background)
            subset = core.quick_subset(session)
            return labelled(core.engine_snapshot(session, subset=subset), req)

    # ----- a job: SparseGPT (or sequential Wanda) block by block -----------------------
    def run(self, session: Host, req: Request, *, blocksize: int = DEFAULT_BLOCKSIZE,
            damp: float = DEFAULT_DAMP, seed: int | None = None,
            stop: threading.Event | None = None,
            on_event: Callable[[OneShotProgress], None] | None = None) -> Snapshot:
        """One-shot pruning as a job; SparseGPT commits (one Undo away)."""
        check_number("blocksize", blocksize, 1, 1 << 20, integer=True)
        check_number("damp", damp, 0.0, 1.0)
        n, m = parse_pattern(req.pattern)
        if m and blocksize % m:
            raise ValueError(f"blocksize {blocksize} must be a multiple of M = {m}")
        names = self.targets(session)
        with session.jobs.job(req.criterion):
            with session.lock:
                slot = session.slot
                session.jobs.started += 1
                before = slot.undo_entry(session.jobs.started)
                slot.clear_masks()
                steps = one_shot(slot.model, names, self.batches(session, req.calibration,
                                                                 seed),
                                 req.criterion, req.sparsity, req.pattern, blocksize, damp,
                                 on_columns=on_event,  # within a block: layer, columns
                                 stopped=None if stop is None else stop.is_set)
            last: OneShotProgress | None = None
            final = OneShotProgress(0, 0, {})
            try:
                while True:
                    if stop is not None and stop.is_set():
                        raise InterruptedError("stopped")
                    with session.lock:
                        last = next(steps, None)
                    if last is None:
                        break
                    final = last
                    if on_event is not None:
                        on_event(last)
            except BaseException as err:
                with session.lock:  # nothing of a stopped or failed job stays
                    slot.restore(before)
                if isinstance(err, InterruptedError):
                    return labelled(session.snapshot(), req)
                raise
            with session.lock:
                land(slot, before, final.masks, commit=req.criterion == "sparsegpt",
                     sparsity=req.sparsity)
                return labelled(core.engine_snapshot(session), req)


def land(slot: Any, before: Any, masks: dict[str, torch.Tensor], commit: bool,
         sparsity: float) -> None:
    """Install the job's masks; when `commit`, its updated survivors become the base (the
    pruned entries keep their old base values, so lowering the slider revives them)."""
    config = PerLayerConfig(sparsity=sparsity, scope="layer")
    if commit:
        live = slot.model.state_dict()
        new_base = clone_state(before.base)
        for name, mask in masks.items():
            new_base[name] = torch.where(mask, live[name], before.base[name])
        slot.undo_stack.append(before)
        slot.set_base(new_base)
    else:
        slot.restore(before)
    slot.install_masks(MaskResult(masks, {}), config)


def labelled(snap: Snapshot, req: Request) -> Snapshot:
    """The snapshot with the criterion, pattern and calibration size it answers."""
    extra = {"criterion": req.criterion, "pattern": req.pattern,
             "calibration": req.calibration}
    return replace(snap, extra={**snap.extra, **extra})


def helper(session: Host) -> CalibratedPruning:
    """The session's collaborator, made on first use (sessions built by load() too)."""
    found = session.__dict__.get("_calibrated")
    if found is None:
        found = session.__dict__["_calibrated"] = CalibratedPruning()
    return found


def prune(session: Host, threshold: float | None, sparsity: float | None, std: float | None,
          scope: str, structured: bool, criterion: object, pattern: object,
          calibration: object) -> Snapshot:
    """Session.prune with a criterion other than magnitude or an N:M pattern."""
    if threshold is not None or std is not None or structured or scope != "layer":
        raise ValueError(f"criterion={criterion!r}, pattern={pattern!r} take sparsity= "
                         "only, per layer (got threshold/std/structured/global scope)")
    req = check_request(sparsity, criterion, pattern, calibration)
    if req.criterion == "sparsegpt":
        return helper(session).run(session, req)
    return helper(session).prune(session, req)


def prune_one_shot(session: Host, criterion: object = "sparsegpt",
                   sparsity: float | None = 0.5, pattern: object = "unstructured",
                   calibration: object = None, *, blocksize: int = DEFAULT_BLOCKSIZE,
                   damp: float = DEFAULT_DAMP, seed: int | None = None,
                   stop: threading.Event | None = None,
                   on_event: Callable[[OneShotProgress], None] | None = None) -> Snapshot:
    """SparseGPT or the sequential Wanda as a job (see the module doc)."""
    req = check_request(sparsity, criterion, pattern, calibration)
    if req.criterion == "magnitude":
        raise ValueError("prune_one_shot runs wanda or sparsegpt; got 'magnitude'")
    if seed is not None:
        check_number("seed", seed, 0, 2 ** 31 - 1, integer=True)
    return helper(session).run(session, req, blocksize=blocksize, damp=damp, seed=seed,
                               stop=stop, on_event=on_event)
