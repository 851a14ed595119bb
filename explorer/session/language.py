"""The language model's own operations over a session (gpt-tiny on a text corpus).

A corpus is held as a Dataset of fixed windows: x (N, T) character ids, y (N, T) the
next characters, and the model's (N, T, V) logits are classification at every position,
so pruning, training, undo and snapshots are the ordinary Session's. What only a GPT
has lives here: building it, structured removal of attention heads and MLP neurons (as
parameter masks, so reset and undo work as for any pruning; shrink() removes them
physically), GPT students, and the softened next-character distribution of a prompt.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..config import GPT_MODELS, MODEL_WIDTH_MAX, MODEL_WIDTH_MIN, check_choice, check_number
from ..data.datasets import Dataset
from ..data.text import DEFAULT_CONTEXT, TEXT_DATASETS, TextCorpus, load_text, load_text_file
from ..engine.distill import soft_view
from ..engine.heads import head_scores, neuron_scores, plan_head_removal
from ..engine.lm import SAMPLE_PROMPT, TINY_TEACHER, build_gpt
from ..engine.lm import build_student as build_gpt_student
from ..engine.prune import apply_masks
from ..files import atomic_file
from ..models.gpt import GPT, MAX_HEADS, MAX_LAYERS
from ..validate import check_weights
from .slots import ModelSlot, clone_state
from .students import slot_outputs
from .tasks import Task, as_gpt, corpus_dataset, objective_for, require_lm

if TYPE_CHECKING:
    from .host import Host

Masks = dict[str, torch.Tensor]


def load_corpus(dataset: object, context: int, seed: int, device: torch.device) -> TextCorpus:
    """A built-in corpus by name, a TextCorpus, or a user's .txt file."""
    if isinstance(dataset, TextCorpus):
        return dataset
    if dataset is None or dataset in TEXT_DATASETS:
        return load_text(str(dataset or "pydoc-text"), context, seed, device)
    return load_text_file(str(dataset), context, seed, device)


def gpt_sizes(layers: int | None, heads: int | None, width: float) -> dict:
    """layers / heads / width multiplier of the 4 x 128 teacher -> GPT sizes."""
    n_layers = TINY_TEACHER["n_layers"] if layers is None else layers
    n_heads = TINY_TEACHER["n_heads"] if heads is None else heads
    check_number("layers", n_layers, 1, MAX_LAYERS, integer=True)
    check_number("heads", n_heads, 1, MAX_HEADS, integer=True)
    check_number("width", width, MODEL_WIDTH_MIN, MODEL_WIDTH_MAX)
    d_model = max(1, round(TINY_TEACHER["d_model"] * width / n_heads)) * n_heads
    return {"n_layers": n_layers, "n_heads": n_heads, "d_model": d_model}


def build_model(model: str | nn.Module, corpus: TextCorpus, width: float, init: str,
                seed: int, layers: int | None, heads: int | None) -> tuple[nn.Module, str]:
    """The GPT a session studies: given, or gpt-tiny sized by layers/heads/width."""
    check_choice("init", init, ("default",))  # gpt-tiny has nanoGPT's init only
    if isinstance(model, nn.Module):
        return model, GPT_MODELS[0]
    check_choice("model", model, GPT_MODELS)
    sizes = gpt_sizes(layers, heads, width)
    return build_gpt(len(corpus.vocab), corpus.context, seed=seed, **sizes), model


def text_parts(dataset: object, model: str | nn.Module, width: float, init: str, seed: int,
               device: torch.device, layers: int | None, heads: int | None, context: int,
               max_train_windows: int | None, max_params: int | None = None
               ) -> tuple[Dataset, ModelSlot, Task]:
    """A language-model session's data (a corpus as windows), slot (a GPT, no shipped
    weights) and task object."""
    check_number("context", context, 2, 4096, integer=True)
    if isinstance(model, str) and model.startswith("hf:"):
        check_choice("init", init, ("default",))
        if width != 1.0 or layers is not None or heads is not None:
            raise ValueError(f"width / layers / heads size gpt-tiny; {model!r} has its own")
        corpus = load_corpus(dataset, context, seed, device)
        return own_text_parts(model, corpus, seed, device, max_train_windows,
                              max_params=max_params)
    corpus = load_corpus(dataset, context, seed, device)
    net, name = build_model(model, corpus, width, init, seed, layers, heads)
    data = corpus_dataset(corpus, max_train_windows).to(device)
    net.to(device)
    gc = as_gpt(net).config
    config = {"dataset": corpus.name, "model": name, "width": width, "init": init,
              "seed": seed, "layers": gc.n_layers, "heads": gc.n_heads,
              "d_model": gc.d_model, "context": gc.context}
    return data, ModelSlot(net, name, config), objective_for(data, corpus)


def hf_model(spec: str, data: Dataset, max_params: int | None = None) -> nn.Module:
    """Open ``hf:PATH`` for `data`: image models on images, text classifiers on tokens.

    A causal language model runs through the engine (explorer.engine.attention) and the
    bench; the Session's language-model track is gpt-tiny's, so it refuses one here.
    """
    from ..models.hf import load_hf

    net = load_hf(spec, image_shape=data.image_shape, max_params=max_params)
    check_weights(spec, net.state_dict(), dict(net.named_parameters()))
    if net.kind == "causal-lm":
        raise ValueError(f"{spec}: a causal language model; Session opens hf: image and "
                         "sequence classifiers (language modelling on text is gpt-tiny's)")
    if net.kind == "image" and data.image_shape is None:
        raise ValueError(f"{spec}: an image model needs image data (imagefolder:PATH, "
                         f"digits, mnist-5k); {data.name!r} has none")
    return net


def own_text_parts(spec: str, corpus: TextCorpus, seed: int, device: torch.device,
                   max_train_windows: int | None, net: Any = None,
                   max_params: int | None = None, own_tokenizer: bool | None = None
                   ) -> tuple[Dataset, ModelSlot, Task]:
    """``hf:PATH``, a causal LM, on a corpus: re-tokenised with the folder's own tokenizer
    when it has one (data.tokens), else read character by character (the character ids are
    the token ids), so the model's vocabulary must hold them and its positions the context;
    said plainly otherwise."""
    from ..data.tokens import tokenize_corpus
    from ..models.hf import load_hf, load_tokenizer
    from .tasks import OwnLanguageModelling

    if net is None:  # given: rebuilt from a session file (its size and values checked there)
        net = load_hf(spec, max_params=max_params)
        check_weights(spec, net.state_dict(), dict(net.named_parameters()))
    # own_tokenizer (a session file says): False, character-level, so no folder is needed;
    # None: the folder's own tokenizer when it has one
    tokenizer = None if own_tokenizer is False else load_tokenizer(spec)
    if tokenizer is not None:  # the model's own tokens (data.tokens): ids mean its tokens
        corpus = tokenize_corpus(corpus, tokenizer)
    if net.kind != "causal-lm":
        raise ValueError(f"{spec}: a {net.kind} model; text data needs a causal language "
                         "model (GPT-2-like, *ForCausalLM / *LMHeadModel)")
    cfg: Any = net.inner.config
    vocab, positions = int(cfg.vocab_size), getattr(cfg, "n_positions", None) or getattr(
        cfg, "max_position_embeddings", None)
    if vocab < len(corpus.vocab):
        raise ValueError(f"{spec}: vocabulary of {vocab} tokens; {corpus.name!r} has "
                         f"{len(corpus.vocab)} characters (its ids are the token ids)")
    if positions is not None and int(positions) < corpus.context:
        raise ValueError(f"{spec}: {positions} positions; the context is {corpus.context}")
    data = corpus_dataset(corpus, max_train_windows).to(device)
    net.to(device)
    config = {"dataset": corpus.name, "model": spec, "width": 1.0, "init": "default",
              "seed": seed, "context": corpus.context}
    return data, ModelSlot(net, spec, config, clone_state(net.state_dict())), \
        OwnLanguageModelling(corpus)


def check_not_text_options(layers: object, heads: object, context: object,
                           max_train_windows: object) -> None:
    """layers / heads / context / max_train_windows size a language model only."""
    given = {"layers": layers, "heads": heads, "max_train_windows": max_train_windows,
             "context": None if context == DEFAULT_CONTEXT else context}
    for name, value in given.items():
        if value is not None:
            raise ValueError(f"{name}={value!r} applies to a language model (gpt-tiny on "
                             "text) only")


# ----- heads and neurons ------------------------------------------------------------
def remove_heads(session: Host, fraction: float, rank: str = "l1",
                 scope: str = "global") -> None:
    """Mask the lowest-ranked `fraction` of attention heads (their q, k, v rows and
    output-projection columns: v = 0 makes a head's output exactly zero)."""
    model = as_gpt(session.model)
    batch = (session.data.val.x[:64], session.data.val.y[:64]) if rank == "loss" else None
    plan = plan_head_removal(head_scores(model, rank, batch), fraction, scope)
    masks: Masks = {}
    for i, heads in plan.items():
        attn = model.blocks[i].attn
        rows = torch.ones(attn.q.out_features, dtype=torch.bool, device=session.device)
        for h in heads:
            rows[h * attn.head_dim:(h + 1) * attn.head_dim] = False
        for name in ("q", "k", "v"):
            masks[f"blocks.{i}.attn.{name}.weight"] = rows[:, None].expand_as(
                getattr(attn, name).weight).clone()
            masks[f"blocks.{i}.attn.{name}.bias"] = rows.clone()
        masks[f"blocks.{i}.attn.out.weight"] = rows[None, :].expand_as(
            attn.out.weight).clone()
    add_masks(session, masks)
    session.history.append({"kind": "remove_heads", "fraction": fraction, "rank": rank,
                            "step": session.jobs.total_steps,
                            "heads": {i: h for i, h in plan.items() if h}})


def remove_neurons(session: Host, fraction: float, norm: str = "l1") -> None:
    """Mask the lowest-norm `fraction` of MLP neurons of every block (fc rows and biases,
    proj columns); GELU(0) = 0 makes them silent."""
    check_number("neuron fraction", fraction, 0.0, 1.0)
    check_choice("norm", norm, ("l1", "l2"))
    masks: Masks = {}
    model = as_gpt(session.model)
    for i, s in enumerate(neuron_scores(model, 1 if norm == "l1" else 2)):
        keep = torch.ones(s.numel(), dtype=torch.bool, device=session.device)
        keep[torch.argsort(s, stable=True)[:round(fraction * s.numel())]] = False
        mlp = model.blocks[i].mlp
        masks[f"blocks.{i}.mlp.fc.weight"] = keep[:, None].expand_as(mlp.fc.weight).clone()
        masks[f"blocks.{i}.mlp.fc.bias"] = keep.clone()
        masks[f"blocks.{i}.mlp.proj.weight"] = keep[None, :].expand_as(
            mlp.proj.weight).clone()
    add_masks(session, masks)


def add_masks(session: Host, new: Masks) -> None:
    """AND `new` into the current masks and show base * mask."""
    slot = session.slot
    masks = dict(slot.masks or {})
    for name, mask in new.items():
        masks[name] = masks[name] & mask if name in masks else mask
    apply_masks(slot.params_for(slot.masks, masks), slot.base, masks)
    slot.masks = masks


def shrink(model: GPT) -> GPT:
    """A physically smaller copy: silent heads (v rows all zero) and neurons (fc row and
    bias zero) removed. Outputs equal the masked model's up to rounding."""
    small = copy.deepcopy(model)
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


def shrunk_differs(small: GPT, model: GPT) -> bool:
    """Whether shrinking removed anything (heads or neurons)."""
    return small.heads_per_layer() != model.heads_per_layer() or any(
        a.mlp.fc.out_features != b.mlp.fc.out_features
        for a, b in zip(small.blocks, model.blocks))


def export_shrunk(small: GPT, path: str | Path) -> dict:
    """The GPT config and the shrunk state (rebuild with models.gpt.gpt_from_state_dict)."""
    payload = {"format": "explorer-gpt-1", "kind": "shrunk",
               "gpt_config": asdict(small.config),
               "state_dict": {k: v.detach().cpu().clone()
                              for k, v in small.state_dict().items()}}
    with atomic_file(path) as handle:  # a failed write leaves the old file as it was
        torch.save(payload, handle)
    return payload


# ----- students ---------------------------------------------------------------------
def make_student(session: Host, width: float = 1.0, layers: int | None = None,
                 init: str = "random", seed: int | None = None) -> GPT:
    """A GPT student of the teacher slot's model: `layers` blocks (default the
    teacher's), width x its d_model; init='teacher' copies every other teacher block."""
    teacher = as_gpt(session.slots.model("teacher"))
    tc = teacher.config
    n_layers = tc.n_layers if layers is None else layers
    d_model = max(1, round(tc.d_model * check_number("student width", width, 0.01, 16.0)
                           / tc.n_heads)) * tc.n_heads
    seed = session.seed + 1 if seed is None else seed
    return build_gpt_student(teacher, n_layers, d_model, tc.n_heads, init, seed).to(
        session.device)


def build_student(session: Host, student: float | nn.Module,
                  seed: int) -> tuple[nn.Module, dict]:
    """The student model (a module is copied) and its config."""
    model = as_gpt(copy.deepcopy(student) if isinstance(student, nn.Module)
                   else make_student(session, float(student), seed=seed))
    gc = model.config
    config = {**session.slots["teacher"].config, "layers": gc.n_layers,
              "heads": gc.n_heads, "d_model": gc.d_model}
    return model.to(session.device), config


def soft_targets(session: Host, temperature: float, student: str | None,
                 prompt: str = SAMPLE_PROMPT) -> dict:
    """Teacher's (and student's) softened next-character distribution after `prompt`."""
    if student is not None:
        check_choice("student", student, ("student", "student_alone"))
    corpus = require_lm(session, "soft_targets").corpus
    slots = ("teacher",) if student is None else ("teacher", student)
    with session.lock:
        ids = corpus.vocab.encode(prompt, session.device)[None, -corpus.context:]
        outs = [out[0, -1] for out in slot_outputs(session, slots, ids)]
    view = soft_view(outs[0], outs[-1], temperature)
    if student is None:
        view.update(student=None, kl=None)
    return {"label": None, "student_slot": student, "prompt": prompt,
            "classes": list(corpus.vocab.chars), **view}
