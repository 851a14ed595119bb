"""Session: the one owner of data, model slots, dense base weights, masks and history.

The state and the slider's operations live in SessionCore (explorer.session.core); this
class builds a session from names or objects and adds the multi-step workflows as thin
delegates to the functions that implement them (students, iterative, workflows, persist).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import IO

import torch
from torch import nn

from ..config import (
    FINETUNE_EPOCHS,
    FINETUNE_SCHEDULE,
    FINETUNE_STEPS,
    GPT_MODELS,
    TrainConfig,
)
from ..data.datasets import Dataset
from ..data.text import DEFAULT_CONTEXT, TextCorpus
from ..engine import checkpoint as ckpt
from ..engine.attention import give_example
from ..engine.lm import SAMPLE_PROMPT, generate
from ..engine.measure import bytes_dense
from ..engine.metrics import Snapshot
from ..engine.structure import shrink_model
from ..engine.train import Event
from ..models.hf import is_hf
from ..models.zoo import build_model, check_fits
from ..validate import (
    check_bool,
    check_device_available,
    check_hidden,
    check_job_hooks,
    check_model,
    check_output_path,
    check_seed,
    check_width,
)
from . import calibrated, language, persist, quant, students, workflows
from .atomic import all_or_nothing
from .core import SessionCore, pick_device
from .iterative import run_iterative, step_plan
from .memory import kept_note
from .slots import ModelSlot, State, clone_state
from .student_api import StudentAPI
from .tasks import (
    SAMPLE_CHARS,
    check_pairing,
    is_text_request,
    objective_for,
)
from .trial import trial


class Session(StudentAPI, SessionCore):
    """Owns the model under study and every change made to it: images, regression, and a
    character language model on text (`Session("pydoc-text", "gpt-tiny")`)."""

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
        device = check_device_available(pick_device(device))
        seed = check_seed("seed", seed)
        check_bool("pretrained", pretrained)
        if model is None:  # the zoo's default for the data: gpt-tiny on text, else the MLP
            model = GPT_MODELS[0] if is_text_request(dataset, None) else "mlp"
        check_pairing(dataset, model)
        if is_text_request(dataset, model):
            for name, value in (("hidden", hidden), ("train", train), ("val", val),
                                ("test", test)):
                if value is not None:
                    raise ValueError(f"{name}= does not apply to a language model on text")
            data, slot, objective = language.text_parts(
                dataset, model, width, init, seed, device, layers, heads, context,
                max_train_windows, max_params=max_params)
            super().__init__(data, slot, objective, seed=seed, device=device)
            return
        language.check_not_text_options(layers, heads, context, max_train_windows)
        width, hidden = check_width(width), check_hidden(hidden)  # before any data loads
        if isinstance(model, nn.Module):
            check_model(model, type(model).__name__)
        data = self.load_data(dataset, train, val, test, task, seed, device).to(device)
        if isinstance(model, nn.Module):  # structured pruning traces it on this data
            net, name = model, type(model).__name__
            give_example(net, data.train.x)
        elif is_hf(model):
            net, name = language.hf_model(str(model), data, max_params), str(model)
        else:
            net = build_model(model, data.input_shape, data.n_outputs, width=width,
                              init=init, seed=seed, hidden=hidden,
                              image_shape=data.image_shape)
            name = model
        net.to(device)
        check_fits(net, name, data)
        config: dict = {"dataset": data.name, "model": name, "width": width, "init": init,
                        "seed": seed}
        if hidden is not None:
            config["hidden"] = list(hidden)
        initial = clone_state(net.state_dict())  # lottery-ticket rewind "init"
        shipped = ckpt.load_matching(net, config) if pretrained else None
        super().__init__(data, ModelSlot(net, name, config, initial), objective_for(data),
                         seed=seed, device=device, history=shipped,
                         pretrained=shipped is not None)

    @property
    def kept_note(self) -> str:
        """What the selected model's memory budget left out of Undo and rewind, in one
        sentence ("" when nothing; explorer.session.memory)."""
        return kept_note(self.slot)

    @property
    def corpus(self) -> TextCorpus:
        """The text corpus of a language-model session."""
        return self._language("corpus").corpus

    @classmethod
    def default(cls, device: str | torch.device | None = None) -> Session:
        """The digits MLP, trained (from the shipped checkpoint, else on the spot)."""
        session = cls("digits", "mlp", device=device)
        if not session.pretrained:
            session.train(epochs=ckpt.DEFAULT_EPOCHS)
            session.adopt_as_original()
        return session

    def save_checkpoint(self, path: str | Path) -> None:
        """Write the dense base as a shippable checkpoint (weights_only loadable)."""
        path = check_output_path("path", path)  # before anything is built
        plain = [{k: v for k, v in h.items() if k != "snapshot"} for h in self.history]
        ckpt.save(path, self.base, self.config, plain)

    # ----- pruning: a language model's structured unit is the attention head --------
    def prune(self, threshold: float | None = None, sparsity: float | None = None,
              std: float | None = None, scope: str = "layer", structured: bool = False,
              norm: str = "l1", *, criterion: str = "magnitude",
              pattern: str = "unstructured", calibration: int | None = None) -> Snapshot:
        """Magnitude-prune from the dense base with exactly one mode; return a Snapshot.

        `criterion` "wanda" or "sparsegpt" and `pattern` "2:4" / "4:8" (N:M) go through
        explorer.session.calibrated (`calibration` training windows; SparseGPT is a job).
        `structured=True` removes whole neurons/filters (and their biases and BatchNorm
        entries), ranked by `norm`; `sparsity` is then the fraction of channels removed per
        layer, and Snapshot.extra["param_fraction_removed"] the parameter fraction. For a
        language model it removes that fraction of the attention heads instead.
        Bad arguments raise ValueError before anything changes.
        """
        if criterion != "magnitude" or pattern != "unstructured" or calibration is not None:
            return calibrated.prune(self, threshold, sparsity, std, scope, structured,
                                    criterion, pattern, calibration)
        if not (structured and self.is_lm):
            return super().prune(threshold, sparsity, std, scope, structured, norm)
        if sparsity is None or threshold is not None or std is not None:
            raise ValueError("structured pruning of gpt-tiny removes a fraction of the heads: "
                             f"give sparsity= only (got threshold={threshold}, std={std})")
        with self.lock:
            self.check_idle("pruning")
            self.slot.clear_masks()
            return self.remove_heads(sparsity, norm, scope)

    def prune_one_shot(self, criterion: str = "sparsegpt", sparsity: float | None = 0.5,
                       pattern: str = "unstructured", calibration: int | None = None,
                       **options: object) -> Snapshot:
        """SparseGPT (commits, one Undo away) or sequential Wanda as a blocking job;
        options: blocksize, damp, seed, stop, on_event (explorer.session.calibrated)."""
        return calibrated.prune_one_shot(self, criterion, sparsity, pattern, calibration,
                                         **options)  # type: ignore[arg-type]

    def remove_heads(self, fraction: float, rank: str = "l1",
                     scope: str = "global") -> Snapshot:
        """Remove the lowest-ranked `fraction` of attention heads (l1/l2 norm of their
        output-projection slice, or the loss rise when masked), on top of current masks;
        reset_pruning() brings them back, shrink() drops them physically."""
        self._language("remove_heads")
        with self.lock:
            self.check_idle("pruning")
            language.remove_heads(self, fraction, rank, scope)
            return self.snapshot()

    def remove_neurons(self, fraction: float, norm: str = "l1") -> Snapshot:
        """Remove the lowest-norm `fraction` of every block's MLP neurons (language model)."""
        self._language("remove_neurons")
        with self.lock:
            self.check_idle("pruning")
            language.remove_neurons(self, fraction, norm)
            return self.snapshot()

    def sample(self, prompt: str = SAMPLE_PROMPT, n_chars: int = SAMPLE_CHARS) -> str:
        """A greedy continuation of `prompt` by the selected language model."""
        corpus = self._language("sample").corpus
        with self.lock:
            return generate(self.model, corpus.vocab, prompt, n_chars)

    # ----- measuring (students: explorer.session.student_api) ----------------------
    @torch.no_grad()
    def predictions(self, split: str = "val", limit: int = 2000) -> tuple:
        """(targets, outputs) of the selected model on `split` as NumPy, at most `limit` rows."""
        return students.predictions(self, split, limit)

    def measure(self, split: str = "val", *, full: bool = True, latency: bool = False,
                reference: torch.Tensor | None = None) -> Snapshot:
        """snapshot() plus the metrics that cost more (see explorer.engine.measure).

        full=False adds only the cheap ones (bytes, teacher agreement, mse); full=True adds
        precision/recall/F1/confusion, FLOPs and the speedup note; latency=True adds
        latency_ms_b1/_b256 (median of repeated runs). `reference`: outputs to measure
        teacher_agreement against (default: the teacher slot, for students).
        """
        return self.measure_slot(self.selected, split, full=full, latency=latency,
                                 reference=reference)

    def measure_slot(self, slot: str, split: str = "val", *, full: bool = True,
                     latency: bool = False, reference: torch.Tensor | None = None) -> Snapshot:
        """measure() for any slot; the selection is restored afterwards. Adds the
        quantized sizes (bytes_quantized, bytes_huffman: explorer.session.quant.sizes)."""
        snap = students.measure_slot(self, slot, split, full=full, latency=latency,
                                     reference=reference)
        with self.lock:
            sizes = quant.sizes(self.slots[slot])
        return replace(snap, extra={**snap.extra, **sizes})

    # ----- quantization (explorer.session.quant) ------------------------------------
    def quantize(self, bits: int = 32, scheme: str = "kmeans",
                 group_size: int | None = None) -> Snapshot:
        """Quantize the selected model's prunable weights on top of its pruning mask:
        k-means weight sharing per layer (Deep Compression) or uniform symmetric per
        output channel (per `group_size` inputs); bits=32 removes it. Kept across pruning
        moves, Undo, training and save/load. Bad values raise ValueError, nothing changes."""
        return quant.quantize(self, bits, scheme, group_size)

    def finetune_codebook(self, epochs: int = 1, lr: float = 1e-4, optimizer: str = "adam",
                          batch_size: int = 64, stop: threading.Event | None = None,
                          on_event: Callable[[Event], None] | None = None, *,
                          steps: int | None = None) -> Snapshot:
        """Fine-tune the k-means centroids (each moves by the sum of its weights'
        gradients); pruned weights stay zero; commits like training (one Undo away)."""
        return quant.finetune_codebook(self, epochs, lr, optimizer, batch_size, stop,
                                       on_event, steps)

    @property
    def quant_setting(self) -> quant.QuantSetting | None:
        """The selected model's quantization setting (None: fp32)."""
        return self.slot.quant

    def snapshot(self, split: str = "val", evaluate_model: bool = True,
                 subset: int | None = None, model: nn.Module | None = None) -> Snapshot:
        """SessionCore.snapshot plus the quantization readouts (setting, codebooks)."""
        with self.lock:
            snap = super().snapshot(split, evaluate_model, subset, model)
            return quant.with_extra(self.slot, snap)

    def train(self, epochs: int = 5, lr: float = 1e-3, optimizer: str = "adam",
              batch_size: int = 64, weight_decay: float = 0.0,
              stop: threading.Event | None = None,
              on_event: Callable[[Event], None] | None = None, *,
              steps: int | None = None) -> Snapshot:
        """SessionCore's train(); on a quantized model it trains in float from the
        quantized weights and re-quantizes with the same setting, and says so in the
        Snapshot's warnings (finetune_codebook() trains the centroids instead)."""
        note = quant.train_note(self.slot)
        snap = super().train(epochs, lr, optimizer, batch_size, weight_decay, stop,
                             on_event, steps=steps)
        if note is None:
            return snap
        return replace(snap, warnings=(*snap.warnings, note))

    def bytes_shrunk(self) -> int | None:
        """fp32 bytes of the physically shrunk model, when structured pruning is in force."""
        if self.is_lm:
            small = language.as_gpt(self.shrink())
            differs = language.shrunk_differs(small, language.as_gpt(self.model))
            return bytes_dense(small) if differs else None
        if not getattr(self.prune_config, "structured", False):
            return None
        return bytes_dense(self.shrink())

    # ----- multi-step compression (explorer.session.workflows, .iterative) ----------
    def rewind_state(self, rewind: str | int) -> State:
        """The weights `rewind` names: "init", or those after `rewind` training epochs."""
        return workflows.rewind_state(self, rewind)

    def rewind_to(self, rewind: str | int) -> None:
        """Reset survivors to the rewind weights; pruned entries keep their base values."""
        workflows.rewind_to(self, rewind)

    def adopt_as_original(self) -> None:
        """Make the current dense base what reset() returns to (e.g. after first training)."""
        workflows.adopt_as_original(self)

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
        plan = step_plan(self.prunable, target, steps, schedule, scope, structured, norm,
                         std=std, round_fraction=round_fraction,
                         output_fraction=output_fraction)
        check_job_hooks(stop, on_event)
        with self.job("iterative pruning"), all_or_nothing(self):  # an exception: no trace
            return run_iterative(self, plan, schedule, finetune_epochs, rewind,
                                 TrainConfig(epochs=max(finetune_epochs, 1), lr=lr,
                                             optimizer=optimizer, batch_size=batch_size),
                                 stop, on_event)

    def prune_per_layer(self, targets: Mapping[str, float]) -> Snapshot:
        """Prune each named layer of the dense base to its own sparsity; others stay dense."""
        return workflows.prune_per_layer(self, targets)

    def install_masks(self, masks: dict[str, torch.Tensor]) -> Snapshot:
        """Apply given boolean masks to the dense base (e.g. a lottery ticket's)."""
        return workflows.install_masks(self, masks)

    def shrink(self) -> nn.Module:
        """A new, physically smaller copy of the pruned model (the session is unchanged).

        Removes every channel whose output is exactly zero; outputs equal the masked model's.
        """
        with self.lock:
            if self.is_lm:
                return language.shrink(language.as_gpt(self.model))
            self.full_norms()  # the copy keeps the statistics a full measurement uses
            return shrink_model(self.model)

    def export(self, path: str | Path, kind: str = "masked") -> dict:
        """Write the model as masked | zeros | shrunk (see explorer.engine.export); a
        language model's shrunk export holds its GPT config (models.gpt_from_state_dict)."""
        if self.is_lm and kind == "shrunk":
            return language.export_shrunk(language.as_gpt(self.shrink()),
                                          check_output_path("path", path))
        with self.lock:
            self.full_norms()
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
