"""LMSession: the Session of a character language model (`gpt-tiny` on a text corpus).

`Session("pydoc-text", "gpt-tiny", ...)` (or a path to a text file) builds one of these.
Everything the digits session does works unchanged, because a text corpus is held as a
Dataset of fixed windows: x (N, T) character ids, y (N, T) the next characters, and the
model's (N, T, V) logits are classification at every position (train.task_loss flattens
them). What differs lives here: building the corpus and the GPT, the Snapshot extras
(perplexity, a generated sample, the heads grid), structured removal of attention heads
and MLP neurons (as parameter masks, so reset and undo work as for any pruning; shrink()
and export("shrunk") remove them physically), GPT students, sequence KD and the softened
next-character distribution of a fixed prompt.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

from ..config import DEFAULT_ALPHA, TrainConfig, check_choice, check_number
from ..data.datasets import Dataset, Split
from ..data.text import DEFAULT_CONTEXT, TEXT_DATASETS, TextCorpus, load_text, load_text_file
from ..engine.distill import check_distill_args, soft_view
from ..engine.heads import head_scores, head_sparsity, neuron_scores, plan_head_removal
from ..engine.lm import (
    SAMPLE_PROMPT,
    TINY_TEACHER,
    build_gpt,
    build_student,
    generate,
    sequence_kd_loss,
)
from ..engine.metrics import Snapshot
from ..engine.prune import apply_masks
from ..models.gpt import GPT
from .core import SessionCore, pick_device
from .session import Session
from .slots import ModelSlot
from .students import run_student, slot_outputs

EVAL_WINDOWS = 256  # validation / test windows, evenly spread over the split
LM_TEMPERATURE = 2.0  # default KD temperature for next-character distributions
SAMPLE_CHARS = 60


def is_text_request(dataset: object, model: object) -> bool:
    """Whether Session(dataset, model) means the language-model track."""
    if model == "gpt-tiny" or isinstance(model, GPT) or isinstance(dataset, TextCorpus):
        return True
    if isinstance(dataset, str) and dataset in TEXT_DATASETS:
        return True
    return isinstance(dataset, (str, Path)) and str(dataset).endswith(".txt") \
        and Path(dataset).is_file()


def corpus_dataset(corpus: TextCorpus, max_train_windows: int | None = None) -> Dataset:
    """The corpus as windows: all of train (non-overlapping), EVAL_WINDOWS of val/test."""
    splits = {s: Split(*corpus.windows(s, EVAL_WINDOWS if s != "train" else
                                       max_train_windows)) for s in ("train", "val", "test")}
    return Dataset(corpus.name, "classification", splits["train"], splits["val"],
                   splits["test"], (corpus.context,), None, len(corpus.vocab))


def _gpt_sizes(layers: int | None, heads: int | None, width: float) -> dict:
    """layers / heads / width multiplier of the 4 x 128 teacher -> GPT sizes."""
    n_layers = TINY_TEACHER["n_layers"] if layers is None else layers
    n_heads = TINY_TEACHER["n_heads"] if heads is None else heads
    check_number("layers", n_layers, 1, 24, integer=True)
    check_number("heads", n_heads, 1, 32, integer=True)
    check_number("width", width, 0.01, 16.0)
    d_model = max(1, round(TINY_TEACHER["d_model"] * width / n_heads)) * n_heads
    return {"n_layers": n_layers, "n_heads": n_heads, "d_model": d_model}


class LMSession(Session):
    """A Session whose model is a GPT and whose data set is a character corpus."""

    is_lm = True

    def __init__(self, dataset: str | Path | TextCorpus | None = "pydoc-text",
                 model: str | nn.Module = "gpt-tiny", *, width: float = 1.0,
                 init: str = "default", seed: int = 0,
                 device: str | torch.device | None = None, pretrained: bool = True,
                 layers: int | None = None, heads: int | None = None,
                 context: int = DEFAULT_CONTEXT, max_train_windows: int | None = None,
                 **_ignored: object) -> None:
        check_choice("init", init, ("default",))  # gpt-tiny has nanoGPT's init only
        device = pick_device(device)
        if isinstance(dataset, TextCorpus):
            corpus = dataset
        elif dataset is None or dataset in TEXT_DATASETS:
            corpus = load_text(dataset or "pydoc-text", context, seed, device)
        else:
            corpus = load_text_file(dataset, context, seed, device)
        self.corpus = corpus
        data = corpus_dataset(corpus, max_train_windows).to(device)
        if isinstance(model, nn.Module):
            net, name = model, "gpt-tiny"
        else:
            check_choice("model", model, ("gpt-tiny",))
            sizes = _gpt_sizes(layers, heads, width)
            net, name = build_gpt(len(corpus.vocab), corpus.context, seed=seed, **sizes), model
        net.to(device)
        gc = net.config
        config = {"dataset": corpus.name, "model": name, "width": width, "init": init,
                  "seed": seed, "layers": gc.n_layers, "heads": gc.n_heads,
                  "d_model": gc.d_model, "context": gc.context}
        # no shipped checkpoint for the language model; every Linear weight is prunable
        SessionCore.__init__(self, data, ModelSlot(net, name, config), seed=seed,
                             device=device)

    # ----- measuring -----------------------------------------------------------------
    def snapshot(self, split: str = "val", evaluate_model: bool = True) -> Snapshot:
        """Session.snapshot plus perplexity, a greedy sample and the layers x heads grid."""
        with self.lock:
            snap = super().snapshot(split, evaluate_model)
            extra = {"perplexity": math.exp(min(snap.loss, 50.0)) if evaluate_model
                     else float("nan"), "heads": head_sparsity(self.model),
                     "heads_per_layer": self.model.heads_per_layer(), "lm": True}
            if evaluate_model:
                extra.update(prompt=SAMPLE_PROMPT, sample=self.sample())
            return replace(snap, extra={**snap.extra, **extra})

    def engine_snapshot(self, split: str = "val") -> Snapshot:
        return self.snapshot(split)

    def sample(self, prompt: str = SAMPLE_PROMPT, n_chars: int = SAMPLE_CHARS) -> str:
        """A greedy continuation of `prompt` by the selected model."""
        with self.lock:
            return generate(self.model, self.corpus.vocab, prompt, n_chars)

    def train(self, *args, **kwargs) -> Snapshot:
        """Session.train; each epoch record also gets its validation perplexity."""
        snap = super().train(*args, **kwargs)
        for h in self.history:
            if h.get("val_loss") is not None and "val_perplexity" not in h:
                h["val_perplexity"] = math.exp(min(h["val_loss"], 50.0))
        return snap

    # ----- structured: heads and MLP neurons -----------------------------------------
    def prune(self, threshold: float | None = None, sparsity: float | None = None,
              std: float | None = None, scope: str = "layer", structured: bool = False,
              norm: str = "l1") -> Snapshot:
        """Session.prune; structured=True removes `sparsity` of the heads (ranked by
        `norm`, per layer or global) starting from the dense base, like any prune()."""
        if not structured:
            return super().prune(threshold, sparsity, std, scope, structured, norm)
        if sparsity is None or threshold is not None or std is not None:
            raise ValueError("structured pruning of gpt-tiny removes a fraction of the heads: "
                             f"give sparsity= only (got threshold={threshold}, std={std})")
        with self.lock:
            self.slot.clear_masks()
            return self.remove_heads(sparsity, norm, scope)

    def remove_heads(self, fraction: float, rank: str = "l1",
                     scope: str = "global") -> Snapshot:
        """Remove the lowest-ranked `fraction` of attention heads (l1/l2 norm of their
        output-projection slice, or the loss rise when masked), on top of current masks.

        A head is removed by masking its q, k, v rows (weights and biases) and its
        output-projection columns: v = 0 makes its output exactly zero, so shrink()
        can drop it physically with the same outputs. reset_pruning() brings it back.
        """
        with self.lock:
            batch = None
            if rank == "loss":
                batch = (self.data.val.x[:64], self.data.val.y[:64])
            plan = plan_head_removal(head_scores(self.model, rank, batch), fraction, scope)
            masks: dict[str, torch.Tensor] = {}
            for i, heads in plan.items():
                attn = self.model.blocks[i].attn
                rows = torch.ones(attn.q.out_features, dtype=torch.bool, device=self.device)
                for h in heads:
                    rows[h * attn.head_dim:(h + 1) * attn.head_dim] = False
                for name in ("q", "k", "v"):
                    masks[f"blocks.{i}.attn.{name}.weight"] = rows[:, None].expand_as(
                        getattr(attn, name).weight).clone()
                    masks[f"blocks.{i}.attn.{name}.bias"] = rows.clone()
                masks[f"blocks.{i}.attn.out.weight"] = rows[None, :].expand_as(
                    attn.out.weight).clone()
            self._add_masks(masks)
            self.history.append({"kind": "remove_heads", "fraction": fraction, "rank": rank,
                                 "step": self.total_steps,
                                 "heads": {i: h for i, h in plan.items() if h}})
            return self.snapshot()

    def remove_neurons(self, fraction: float, norm: str = "l1") -> Snapshot:
        """Remove the lowest-norm `fraction` of MLP neurons of every block (fc rows and
        biases, proj columns), on top of current masks; GELU(0) = 0 makes them silent."""
        check_number("neuron fraction", fraction, 0.0, 1.0)
        check_choice("norm", norm, ("l1", "l2"))
        with self.lock:
            masks = {}
            for i, s in enumerate(neuron_scores(self.model, 1 if norm == "l1" else 2)):
                keep = torch.ones(s.numel(), dtype=torch.bool, device=self.device)
                keep[torch.argsort(s, stable=True)[:round(fraction * s.numel())]] = False
                mlp = self.model.blocks[i].mlp
                masks[f"blocks.{i}.mlp.fc.weight"] = keep[:, None].expand_as(
                    mlp.fc.weight).clone()
                masks[f"blocks.{i}.mlp.fc.bias"] = keep.clone()
                masks[f"blocks.{i}.mlp.proj.weight"] = keep[None, :].expand_as(
                    mlp.proj.weight).clone()
            self._add_masks(masks)
            return self.snapshot()

    def _add_masks(self, new: dict[str, torch.Tensor]) -> None:
        """AND `new` into the current masks and show base * mask."""
        masks = dict(self.masks or {})
        for name, mask in new.items():
            masks[name] = masks[name] & mask if name in masks else mask
        apply_masks(self.slot.params_for(self.masks, masks), self.base, masks)
        self.masks = masks

    def shrink(self) -> GPT:
        """A physically smaller copy: silent heads (v rows all zero) and neurons (fc row
        and bias zero) removed. Outputs equal the masked model's up to rounding."""
        with self.lock:
            small = copy.deepcopy(self.model)
        with torch.no_grad():
            for block in small.blocks:
                attn, hd = block.attn, block.attn.head_dim
                dead = [h for h in range(attn.n_heads)
                        if attn.head_mask[h] == 0 or not (
                            attn.v.weight[h * hd:(h + 1) * hd].any()
                            or attn.v.bias[h * hd:(h + 1) * hd].any())]
                if dead:
                    attn.remove_heads(dead)
                fc = block.mlp.fc
                silent = (~fc.weight.any(dim=1) & (fc.bias == 0)).nonzero().flatten()
                if silent.numel():
                    block.mlp.remove_neurons(silent.tolist())
        return small

    def bytes_shrunk(self) -> int | None:
        from ..engine.measure import bytes_dense

        small = self.shrink()
        return bytes_dense(small) if small.heads_per_layer() != self.model.heads_per_layer() \
            or any(a.mlp.fc.out_features != b.mlp.fc.out_features
                   for a, b in zip(small.blocks, self.model.blocks)) else None

    def export(self, path: str | Path, kind: str = "masked") -> dict:
        """masked | zeros as for any model; shrunk writes the GPT config and the shrunk
        state (rebuild with explorer.models.gpt.gpt_from_state_dict)."""
        if kind != "shrunk":
            return super().export(path, kind)
        small = self.shrink()
        payload = {"format": "explorer-gpt-1", "kind": "shrunk",
                   "gpt_config": asdict(small.config),
                   "state_dict": {k: v.detach().cpu().clone()
                                  for k, v in small.state_dict().items()}}
        torch.save(payload, path)
        return payload

    # ----- students ------------------------------------------------------------------
    def make_student(self, width: float = 1.0, layers: int | None = None,
                     init: str = "random", seed: int | None = None) -> GPT:
        """A GPT student of the teacher slot's model: `layers` blocks (default the
        teacher's), width x its d_model; init='teacher' copies every other teacher block."""
        teacher = self.slot_model("teacher")
        tc = teacher.config
        n_layers = tc.n_layers if layers is None else layers
        d_model = max(1, round(tc.d_model * check_number("student width", width, 0.01, 16.0)
                               / tc.n_heads)) * tc.n_heads
        seed = self.seed + 1 if seed is None else seed
        return build_student(teacher, n_layers, d_model, tc.n_heads, init, seed).to(
            self.device)

    def build_student(self, student: float | nn.Module, seed: int) -> tuple[nn.Module, dict]:
        model = (copy.deepcopy(student) if isinstance(student, nn.Module)
                 else self.make_student(float(student), seed=seed))
        tconf = self.slots["teacher"].config
        gc = model.config
        return model.to(self.device), {**tconf, "layers": gc.n_layers, "heads": gc.n_heads,
                                       "d_model": gc.d_model}

    def distill(self, student: float | nn.Module = 1.0, temperature: float | None = None,
                alpha: float = DEFAULT_ALPHA, epochs: int = 5, lr: float = 1e-3,
                optimizer: str = "adam", batch_size: int = 64, t_squared: bool = True,
                seed: int | None = None, stop: threading.Event | None = None,
                on_event: Callable | None = None, layers: int | None = None,
                student_init: str = "random") -> Snapshot:
        """KD from the teacher's next-character distributions (sequence_kd_loss, the
        image track's loss per position). Teacher logits are computed per batch: a
        cache of every training window's logits would cost N * T * V floats."""
        temperature = LM_TEMPERATURE if temperature is None else temperature
        temperature, alpha = check_distill_args(temperature, alpha)
        if layers is not None or student_init != "random":
            student = self.make_student(1.0 if isinstance(student, nn.Module)
                                        else float(student), layers, student_init, seed)
        teacher = self.slot_model("teacher")

        def loss_fn(out, x, y, index):
            was_training = teacher.training
            teacher.eval()
            with torch.no_grad():
                target = teacher(x)
            teacher.train(was_training)
            return sequence_kd_loss(out, target, y, temperature, alpha, t_squared)

        record = {"distill": {"temperature": temperature, "alpha": alpha,
                              "t_squared": t_squared, "epochs": epochs}}
        return run_student(self, "student", student, loss_fn,
                           TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer,
                                       batch_size=batch_size),
                           seed, stop, on_event, record)

    def train_student_alone(self, student: float | nn.Module = 1.0, *args,
                            layers: int | None = None, student_init: str = "random",
                            seed: int | None = None, **kwargs) -> Snapshot:
        """The digits method, with a GPT student of `layers` blocks (see make_student)."""
        if layers is not None or student_init != "random":
            student = self.make_student(1.0 if isinstance(student, nn.Module)
                                        else float(student), layers, student_init, seed)
        return super().train_student_alone(student, *args, seed=seed, **kwargs)

    def soft_targets(self, index: int = 0, temperature: float = LM_TEMPERATURE,
                     student: str | None = "student", prompt: str = SAMPLE_PROMPT) -> dict:
        """Teacher's (and student's) softened next-character distribution after the
        fixed `prompt` (`index` is accepted for the digits signature and ignored)."""
        if student is not None:
            check_choice("student", student, ("student", "student_alone"))
        slots = ("teacher",) if student is None else ("teacher", student)
        with self.lock:
            ids = self.corpus.vocab.encode(prompt, self.device)[None, -self.corpus.context:]
            outs = [out[0, -1] for out in slot_outputs(self, slots, ids)]
        view = soft_view(outs[0], outs[-1], temperature)
        if student is None:
            view.update(student=None, kl=None)
        return {"index": index, "label": None, "student_slot": student, "prompt": prompt,
                "classes": list(self.corpus.vocab.chars), **view}


Session.variants.append((is_text_request, LMSession))
