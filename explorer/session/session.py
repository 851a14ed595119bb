"""Session: the one owner of data, model slots, dense base weights, masks and history.

The Session holds its collaborators, each with one role (explorer.session.*), and keeps
the operations of the slider and the buttons as short methods; the work is done by
build (construction), core (prune, snapshot), rollback (undo, reset), session_jobs
(jobs, training), student_api (students), lm_api (language models), workflows (pruning
beyond the slider, export), iterative, trial and persist. Names that moved in issue 27
still work for one release with a DeprecationWarning naming the new spelling
(explorer.session.moved).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import torch
from torch import nn

from ..config import (
    FINETUNE_EPOCHS,
    FINETUNE_SCHEDULE,
    FINETUNE_STEPS,
    HISTORY_MAX,
    PruneConfig,
    TrainConfig,
    check_choice,
)
from ..data.datasets import Dataset
from ..data.text import DEFAULT_CONTEXT, TextCorpus
from ..engine import checkpoint as ckpt
from ..engine.metrics import Snapshot
from ..engine.structure import shrink_model
from ..engine.threads import WorkLock
from ..engine.train import Event
from ..validate import (
    check_bool,
    check_device_available,
    check_job_hooks,
    check_prunable,
    check_seed,
)
from . import (
    build,
    calibrated,
    core,
    language,
    lm_api,
    moved,
    persist,
    quant,
    rollback,
    students,
    workflows,
)
from .atomic import all_or_nothing
from .bounded import BoundedList
from .iterative import run_iterative, step_plan
from .lm_api import Language
from .session_jobs import Jobs
from .settings import Settings
from .slots import SLOT_NAMES, ModelSlot, Slots
from .student_api import Students
from .tasks import Task
from .trial import trial
from .workflows import Pruning


class Session:
    """Owns the model under study and every change made to it: images, regression, and a
    character language model on text (`Session("pydoc-text", "gpt-tiny")`).

    Its public names, all of them (tests/test_session_surface.py keeps this table true):

    ===================== ==========================================================
    name                  what it is
    ===================== ==========================================================
    data                  the Dataset (train / val / test splits; ``data.task``)
    device, seed          where it computes; the seed of inits, batches and subsets
    objective             what differs between tasks (explorer.session.tasks)
    history               epoch records and pruning events, in order (the curves)
    pretrained            whether the teacher came from a shipped checkpoint
    lock                  one optimizer step or one slider move at a time
    settings              switches: bn_recalibration, sample_in_snapshots
    slots                 the model slots by name; ``slots.names``, ``slots.model(n)``
    selected, select()    the selected slot's name; select another
    slot, model           the selected ModelSlot (base, masks, undo_stack, ...); its model
    is_lm                 whether this is a language model on text
    jobs                  the running job, ids, step counter, training, finetune_codebook
    students              distill, train_alone, train_hard, soft_targets, the views
    lm                    remove_heads, remove_neurons, sample, corpus (text only)
    pruning               per_layer, install_masks, one_shot, rewind_to, ...
    prune()               pruning from the dense base (one mode; magnitude, Wanda, SparseGPT)
    quantize()            bits per weight on top of the mask (k-means or uniform)
    reset_pruning()       drop the masks: the dense base again, bit for bit
    train()               train the selected model; the result becomes its base
    undo(), reset()       the base before the last job; the original model
    prune_iteratively()   prune in steps with fine-tuning (Han; Frankle & Carbin)
    snapshot(), refine()  a frozen Snapshot; the full-set one after a subset answer
    measure()             snapshot() plus costlier metrics, for any slot
    shrink(), export()    a physically smaller copy; write the model or a checkpoint
    trial()               a context that leaves no trace (studies)
    save(), to_bytes()    the whole session to a file or bytes
    load(), default()     a session from save()'s file; the trained digits MLP
    ===================== ==========================================================
    """

    def __init__(self, dataset: str | Path | Dataset | TextCorpus | None = None,
                 model: str | nn.Module | None = None, *, width: float = 1.0,
                 init: str = "default", seed: int = 0,
                 device: str | torch.device | None = None, pretrained: bool = True,
                 hidden: tuple[int, ...] | None = None, train: object = None,
                 val: object = None, test: object = None, task: str = "classification",
                 layers: int | None = None, heads: int | None = None,
                 context: int = DEFAULT_CONTEXT,
                 max_train_windows: int | None = None,
                 max_params: int | None = None) -> None:
        # max_params: an hf: model's parameter cap, checked on `meta` before its weights
        # are read (None: config.MODEL_PARAMS_MAX; explorer.models.hf.load_hf)
        device = check_device_available(core.pick_device(device))
        seed = check_seed("seed", seed)
        check_bool("pretrained", pretrained)
        data, slot, objective, shipped = build.session_parts(
            dataset, model, width=width, init=init, seed=seed, device=device,
            pretrained=pretrained, hidden=hidden, train=train, val=val, test=test, task=task,
            layers=layers, heads=heads, context=context, max_train_windows=max_train_windows,
            max_params=max_params)
        self._setup(data, slot, objective, seed=seed, device=device, history=shipped,
                    pretrained=shipped is not None)

    def _setup(self, data: Dataset, slot: ModelSlot, objective: Task, *, seed: int,
               device: torch.device, history: list[dict] | None = None,
               pretrained: bool = False) -> None:
        """The state every constructor ends with (persist_lm rebuilds sessions with it)."""
        self.device, self.seed, self.data = device, seed, data
        # one optimizer step or one slider move at a time, on one torch thread for a small
        # model (explorer.engine.threads: OpenMP fan-out costs more than it saves there)
        self.lock = WorkLock(lambda: sum(p.numel() for p in self.slot.model.parameters()))
        self.slots = Slots(slot)
        self.pretrained = pretrained
        self.objective = objective  # what differs between tasks (explorer.session.tasks)
        self.settings = Settings()
        # epoch records and pruning events, in order; a shipped model brings its own
        self.history: list[dict] = BoundedList(history or [], HISTORY_MAX)
        self.jobs = Jobs(self, max((h.get("step", 0) for h in self.history), default=0))
        self.students = Students(self)
        self.lm = Language(self)
        self.pruning = Pruning(self)
        check_prunable(slot.model, slot.model_name, slot.prunable)

    if not TYPE_CHECKING:  # hidden from mypy: the old names are not part of the API
        def __getattr__(self, name: str) -> Any:
            return moved.get(self, name)

        def __setattr__(self, name: str, value: Any) -> None:
            if not moved.set(self, name, value):
                object.__setattr__(self, name, value)

    @classmethod
    def default(cls, device: str | torch.device | None = None) -> Session:
        """The digits MLP, trained (from the shipped checkpoint, else on the spot)."""
        session = cls("digits", "mlp", device=device)
        if not session.pretrained:
            session.train(epochs=ckpt.DEFAULT_EPOCHS)
            session.pruning.adopt_as_original()
        return session

    # ----- the selected slot ----------------------------------------------------------
    @property
    def selected(self) -> str:
        """Which slot prune(), train() and snapshot() act on."""
        return self.slots.selected

    @property
    def slot(self) -> ModelSlot:
        """The selected model's slot (its base, masks, undo stack, rewind points)."""
        return self.slots.current

    @property
    def model(self) -> nn.Module:
        """The selected slot's model."""
        return self.slots.current.model

    @property
    def is_lm(self) -> bool:
        """Whether this is a language model on text (gpt-tiny, an hf: causal LM)."""
        return self.objective.is_lm

    def select(self, name: str) -> Snapshot:
        """Make `name` the model that pruning, training and snapshots act on.

        Not while a job runs in another thread (the UI disables the selector during
        jobs); a job commits or rolls back the slot it started on, whatever is selected.
        """
        check_choice("model slot", name, SLOT_NAMES)
        with self.lock:
            if name != self.selected:
                self.jobs.check_idle("selecting another model")
            self.slots.model(name)  # raises when that slot is empty
            self.slots.selected = name
            return core.snapshot(self)

    # ----- pruning: a language model's structured unit is the attention head --------
    def prune(self, threshold: float | None = None, sparsity: float | None = None,
              std: float | None = None, scope: str = "layer", structured: bool = False,
              norm: str = "l1", *, criterion: str = "magnitude",
              pattern: str = "unstructured", calibration: int | None = None) -> Snapshot:
        """Prune from the dense base with exactly one mode; return a Snapshot.

        `criterion` "wanda" or "sparsegpt" and `pattern` "2:4" / "4:8" (N:M) go through
        explorer.session.calibrated (`calibration` training windows; SparseGPT is a job:
        session.pruning.one_shot runs it with progress and Stop).
        `structured=True` removes whole neurons/filters (and their biases and BatchNorm
        entries), ranked by `norm`; `sparsity` is then the fraction of channels removed per
        layer, and Snapshot.extra["param_fraction_removed"] the parameter fraction. For a
        language model it removes that fraction of the attention heads instead.
        Bad arguments raise ValueError before anything changes.
        """
        if criterion != "magnitude" or pattern != "unstructured" or calibration is not None:
            return calibrated.prune(self, threshold, sparsity, std, scope, structured,
                                    criterion, pattern, calibration)
        if structured and self.is_lm:
            return lm_api.prune_heads(self, threshold, sparsity, std, norm, scope)
        config = PruneConfig(threshold=threshold, sparsity=sparsity, std=std, scope=scope,
                             structured=structured, norm=norm)
        with self.lock:
            self.jobs.check_idle("pruning")
            return core.prune(self, config)

    def reset_pruning(self) -> Snapshot:
        """Drop the masks: the model holds the dense base again, bit for bit."""
        return rollback.reset_pruning(self)

    def quantize(self, bits: int | Mapping[str, int] = 32, scheme: str = "kmeans",
                 group_size: int | None = None) -> Snapshot:
        """Quantize the selected model's prunable weights on top of its pruning mask:
        k-means weight sharing per layer (Deep Compression) or uniform symmetric per
        output channel (per `group_size` inputs); bits=32 removes it. `bits` may differ
        per layer: a mapping of layer kinds ("conv", "linear", "embedding") or parameter
        names to widths, a name winning over a kind, 32 leaving a layer in float (Deep
        Compression: {"conv": 8, "linear": 5}). Kept across pruning
        moves, Undo, training and save/load (``slot.quant``); session.jobs.finetune_codebook
        trains the centroids. Bad values raise ValueError, nothing changes."""
        return quant.quantize(self, bits, scheme, group_size)

    # ----- training and its undo ------------------------------------------------------
    def train(self, epochs: int = 5, lr: float = 1e-3, optimizer: str = "adam",
              batch_size: int = 64, weight_decay: float = 0.0,
              stop: threading.Event | None = None,
              on_event: Callable[[Event], None] | None = None, *,
              steps: int | None = None) -> Snapshot:
        """Train (blocking) with the masks applied, then commit the result as the base.

        Atomic: an exception or a divergence (see engine.train) puts back the state from
        before the job exactly; Stop keeps what was trained so far (one Undo away).
        `steps` gives a budget of optimizer steps instead of epochs (short runs, tests).
        On a quantized model it trains in float from the quantized weights, re-quantizes
        with the same setting and says so in the Snapshot's warnings.
        """
        config = TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer, batch_size=batch_size,
                             weight_decay=weight_decay, steps=steps)
        note = quant.train_note(self.slot)
        snap = self.jobs.train_selected(config, stop, on_event)
        return snap if note is None else replace(snap, warnings=(*snap.warnings, note))

    def undo(self) -> Snapshot:
        """Return to the base, masks and curves before the last committed job."""
        return rollback.undo(self)

    def reset(self, keep_undo: bool = False) -> Snapshot:
        """Back to the original trained model: no masks, the discarded jobs' history
        records gone, an empty undo stack (`keep_undo`: one Undo brings it all back)."""
        return rollback.reset(self, keep_undo)

    # ----- multi-step compression (explorer.session.iterative) -----------------------
    def prune_iteratively(self, target: float | None = None, steps: int = FINETUNE_STEPS,
                          schedule: str = FINETUNE_SCHEDULE,
                          finetune_epochs: int = FINETUNE_EPOCHS,
                          rewind: str | int | None = None, scope: str = "layer",
                          structured: bool = False, norm: str = "l1", lr: float = 1e-3,
                          optimizer: str = "adam", batch_size: int = 64,
                          stop: threading.Event | None = None,
                          on_event: Callable[[Event], None] | None = None, *,
                          std: float | Sequence[float] | None = None,
                          round_fraction: float | None = None,
                          output_fraction: float | None = None) -> Snapshot:
        """Prune over `steps` steps (masks stack), fine-tuning after each.

        Exactly one rule: `target` sparsity reached by `schedule`; `std` (Han et al.): each
        layer thresholded at q_k * std of its current weights, q_k = `std` reached by
        `schedule` or a list of factors; `round_fraction` (Frankle & Carbin): each step
        removes round(p * remaining) weights per layer, the output layer at
        `output_fraction` (default p / 2). See explorer.session.iterative.
        The defaults (steps, schedule, fine-tune epochs per step) are explorer.config's
        FINETUNE_*, which the app's controls and `explorer run` use too.
        Starts from the dense base. Each step's Snapshot goes to history as "prune_step".
        """
        stop = threading.Event() if stop is None else stop  # set when a fine-tune diverges
        plan = step_plan(self.slot.prunable, target, steps, schedule, scope, structured, norm,
                         std=std, round_fraction=round_fraction,
                         output_fraction=output_fraction)
        check_job_hooks(stop, on_event)
        with self.jobs.job("iterative pruning"), all_or_nothing(self):  # an exception: no trace
            return run_iterative(self, plan, schedule, finetune_epochs, rewind,
                                 TrainConfig(epochs=max(finetune_epochs, 1), lr=lr,
                                             optimizer=optimizer, batch_size=batch_size),
                                 stop, on_event)

    # ----- measuring ---------------------------------------------------------------
    def snapshot(self, split: str = "val", evaluate_model: bool = True,
                 subset: int | None = None) -> Snapshot:
        """Freeze the current state: metrics on `split` (on `subset` seeded rows of it when
        given: Snapshot.extra then holds eval_samples and eval_total), per-layer sparsity,
        histograms."""
        with self.lock:
            return core.snapshot(self, split, evaluate_model, subset)

    def refine(self, split: str = "val") -> Snapshot:
        """The full-set snapshot that follows a subset answer (run it in the background),
        with which sparsity a structured number means."""
        with self.lock:
            return core.engine_snapshot(self, split)  # redoes fast BN statistics

    def measure(self, split: str = "val", *, slot: str | None = None, full: bool = True,
                latency: bool = False, reference: torch.Tensor | None = None) -> Snapshot:
        """snapshot() plus the metrics that cost more (see explorer.engine.measure), of the
        selected model or of `slot` (the selection is restored afterwards).

        full=False adds only the cheap ones (bytes, teacher agreement, mse); full=True adds
        precision/recall/F1/confusion, FLOPs and the speedup note; latency=True adds
        latency_ms_b1/_b256 (median of repeated runs). `reference`: outputs to measure
        teacher_agreement against (default: the teacher slot, for students).
        """
        name = self.selected if slot is None else slot
        snap = students.measure_slot(self, name, split, full=full, latency=latency,
                                     reference=reference)
        with self.lock:  # the quantized sizes (bytes_quantized, bytes_huffman: quant.sizes)
            sizes = quant.sizes(self.slots[name])
        return replace(snap, extra={**snap.extra, **sizes})

    def shrink(self) -> nn.Module:
        """A new, physically smaller copy of the pruned model (the session is unchanged).

        Removes every channel whose output is exactly zero; outputs equal the masked model's.
        """
        with self.lock:
            if self.is_lm:
                return language.shrink(language.as_gpt(self.model))
            core.full_norms(self)  # the copy keeps the statistics a full measurement uses
            return shrink_model(self.model)

    def export(self, path: str | Path, kind: str = "masked") -> dict:
        """Write the model as masked | zeros | shrunk (see explorer.engine.export; a
        language model's shrunk export holds its GPT config, models.gpt_from_state_dict),
        or kind="checkpoint": the dense base as a shippable checkpoint (weights_only
        loadable; returns {"path": ...}), or kind="hf": an hf: model as a save_pretrained
        folder with its tokenizer (workflows.export_hf)."""
        return workflows.export_session(self, path, kind)

    def trial(self) -> AbstractContextManager[Session]:
        """A context in which studies may prune, train and undo: on exit the session is
        exactly as it was (weights, masks, undo, history, counters, slots, RNG), even
        after an exception or a Stop. See explorer.session.trial."""
        return trial(self)

    # ----- persistence (explorer.session.persist) -----------------------------------
    def save(self, path: str | Path, max_params: int | None = None) -> None:
        """Write the whole session (every slot, undo stack, masks, history) to `path`.

        Plain tensors and data only: Session.load reads it with weights_only=True. A model
        over `max_params` parameters (default config.MODEL_PARAMS_MAX, the cap Session.load
        applies) is refused before anything is written.
        """
        persist.save_session(self, path, max_params=max_params)

    def to_bytes(self, undo: bool = True, max_params: int | None = None) -> bytes:
        """What save() writes, as bytes (for a download); `undo=False` leaves out the undo
        steps and rewind points (persist.left_out_bytes(session) says how many bytes)."""
        return persist.session_bytes(self, undo, max_params)

    @classmethod
    def load(cls, source: str | Path | bytes | IO[bytes], device: str | None = None,
             max_params: int | None = None,
             data_roots: tuple[str, ...] | None = None) -> Session:
        """A Session rebuilt from a Session.save file, its bytes or a binary file object;
        ValueError when the file is refused (code in the pickle, truncated, not a session
        file, weights of another model, a model over `max_params` parameters).

        The file names its data (and an hf: model's folder): called from Python, this
        reads whatever path it names, as the caller's own code would. `data_roots` (the
        app passes the folders its operator allows, explorer.session.roots) refuses a file
        naming anything outside them, with one message that does not say whether the path
        exists."""
        return persist.load_session(source, device=device, cls=cls, max_params=max_params,
                                    data_roots=data_roots)
