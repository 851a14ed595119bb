"""Building, training, distilling and evaluating `gpt-tiny` on a character corpus.

Functions here take a GPT and a TextCorpus and return plain numbers or events; training
goes through the one loop (explorer.engine.train) with the language model's recipe.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from ..config import STUDENT_INITS, TrainConfig, check_choice, check_number
from ..data.datasets import Split
from ..data.text import RandomWindows, TextCorpus, Vocab
from ..models.gpt import GPT, GPTConfig
from .distill import kd_loss
from .train import EpochEvent, LossFn, ProgressEvent, StepEvent, StopEvent, train_steps

# Sized to train in about a minute on 2 CPU cores (see lm_report for the measurement);
# GPU_TEACHER is the 4 x 256 teacher, seconds on a GPU.
TINY_TEACHER = dict(n_layers=4, n_heads=4, d_model=128)
GPU_TEACHER = dict(n_layers=4, n_heads=4, d_model=256)


def build_gpt(vocab_size: int, context: int, n_layers: int = 4, n_heads: int = 4,
              d_model: int = 128, mlp_ratio: int = 4, dropout: float = 0.0,
              seed: int = 0) -> GPT:
    """A seeded gpt-tiny: the same arguments give the same weights."""
    config = GPTConfig(vocab_size, context, n_layers, n_heads, d_model, mlp_ratio, dropout)
    torch.manual_seed(seed)
    return GPT(config)


def gpt_tiny(vocab_size: int, context: int, size: str = "cpu", seed: int = 0,
             **overrides: int) -> GPT:
    """The gpt-tiny teacher: 'cpu' (4 x 128, ~0.8M parameters, about a minute of
    training on 2 cores) or 'gpu' (the issue's 4 x 256, ~3.2M); `overrides` change sizes."""
    check_choice("gpt-tiny size", size, ("cpu", "gpu"))
    sizes = {**(TINY_TEACHER if size == "cpu" else GPU_TEACHER), **overrides}
    return build_gpt(vocab_size, context, seed=seed, **sizes)


def teacher_layers(n_teacher: int, n_student: int) -> list[int]:
    """Which teacher blocks seed the student: every (n_teacher / n_student)-th, from 0.

    For 4 -> 2 this is [0, 2], DistilBERT's "one layer out of two".
    """
    return [i * n_teacher // n_student for i in range(n_student)]


def build_student(teacher: GPT, n_layers: int, d_model: int | None = None,
                  n_heads: int | None = None, init: str = "random", seed: int = 0) -> GPT:
    """A shallower (or narrower) student; init='teacher' copies every other teacher block.

    Copying needs the teacher's width and head count (DistilBERT kept the width and
    halved the depth); the embeddings and the final LayerNorm are copied too.
    """
    check_choice("student init", init, STUDENT_INITS)
    tc = teacher.config
    check_number("student n_layers", n_layers, 1, tc.n_layers, integer=True)
    d_model = d_model or tc.d_model
    n_heads = n_heads or tc.n_heads
    student = build_gpt(tc.vocab_size, tc.context, n_layers, n_heads, d_model, tc.mlp_ratio,
                        tc.dropout, seed)
    if init == "teacher":
        if (d_model, n_heads) != (tc.d_model, tc.n_heads):
            raise ValueError(f"init='teacher' needs the teacher's width {tc.d_model} and "
                             f"{tc.n_heads} heads; got d_model={d_model}, n_heads={n_heads}")
        if any(b.attn.n_heads != tc.n_heads or b.mlp.fc.out_features != tc.mlp_ratio
               * tc.d_model for b in teacher.blocks):
            raise ValueError("init='teacher' needs an unshrunk teacher (heads or neurons "
                             "were removed)")
        with torch.no_grad():
            for name in ("tok_emb", "pos_emb", "ln_f"):
                getattr(student, name).load_state_dict(getattr(teacher, name).state_dict())
            for s_block, t_idx in zip(student.blocks, teacher_layers(tc.n_layers, n_layers)):
                s_block.load_state_dict(teacher.blocks[t_idx].state_dict())
    return student


def sequence_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     targets: torch.Tensor, temperature: float, alpha: float,
                     t_squared: bool = True) -> torch.Tensor:
    """Hinton KD per token: (1 - a) CE + a T^2 KL(p_t^T || p_s^T), batchmean over tokens.

    (B, T, V) logits are flattened to (B*T, V), so every token is one "example" of the
    image track's per-example loss and the two conventions agree.
    """
    v = student_logits.shape[-1]
    return kd_loss(student_logits.reshape(-1, v), teacher_logits.reshape(-1, v),
                   targets.reshape(-1), temperature, alpha, t_squared)


@torch.no_grad()
def evaluate_lm(model: GPT, corpus: TextCorpus, split: str = "val",
                max_windows: int | None = 256, batch_size: int = 64) -> dict[str, float]:
    """Cross-entropy, perplexity = exp(loss), and next-character accuracy on a split."""
    was_training = model.training
    model.eval()
    x_all, y_all = corpus.windows(split, max_windows)
    total_loss, correct, n = 0.0, 0, 0
    for start in range(0, len(x_all), batch_size):
        x, y = x_all[start:start + batch_size], y_all[start:start + batch_size]
        logits = model(x)
        total_loss += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(),
                                            reduction="sum"))
        correct += int((logits.argmax(-1) == y).sum())
        n += y.numel()
    model.train(was_training)
    loss = total_loss / n
    return {"loss": loss, "perplexity": math.exp(loss), "accuracy": correct / n}


def lm_train_config(steps: int, batch_size: int = 32, lr: float = 3e-3,
                    weight_decay: float = 0.01) -> TrainConfig:
    """The language model's recipe: AdamW, gradient clipping, warm-up + cosine decay."""
    return TrainConfig(steps=steps, batch_size=batch_size, lr=lr, optimizer="adamw",
                       weight_decay=weight_decay, clip_grad_norm=1.0,
                       lr_schedule="warmup_cosine")


def teacher_kd_loss(teacher: GPT, temperature: float, alpha: float,
                    t_squared: bool) -> LossFn:
    """sequence_kd_loss against the teacher's logits, computed per batch in eval mode
    (batches are random windows, so there is nothing to cache)."""

    def loss_fn(out: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                index: torch.Tensor) -> torch.Tensor:
        was_training = teacher.training
        teacher.eval()
        with torch.no_grad():
            target = teacher(x)
        teacher.train(was_training)
        return sequence_kd_loss(out, target, y, temperature, alpha, t_squared)

    return loss_fn


def train_lm_steps(model: GPT, corpus: TextCorpus, steps: int, batch_size: int = 32,
                   lr: float = 3e-3, weight_decay: float = 0.01, seed: int = 0,
                   stop: threading.Event | None = None,
                   masks: dict[str, torch.Tensor] | None = None, teacher: GPT | None = None,
                   temperature: float = 2.0, alpha: float = 0.5, t_squared: bool = True,
                   eval_windows: int = 64
                   ) -> Iterator[StepEvent | ProgressEvent | EpochEvent | StopEvent]:
    """Train in place for a budget of `steps` through the one training loop
    (engine.train.train_steps) on random windows; with `teacher`, distil from it."""
    config = lm_train_config(steps, batch_size, lr, weight_decay)
    loss_fn = None if teacher is None else teacher_kd_loss(teacher, temperature, alpha,
                                                           t_squared)
    val = Split(*corpus.windows("val", eval_windows))
    yield from train_steps(model, RandomWindows(corpus), val, "classification", config,
                           masks=masks, stop=stop, seed=seed, loss_fn=loss_fn)


def train_lm(model: GPT, corpus: TextCorpus, steps: int, **kwargs: Any) -> list[StepEvent]:
    """Run train_lm_steps to the end; return the step events (the loss curve)."""
    return [e for e in train_lm_steps(model, corpus, steps, **kwargs)
            if isinstance(e, StepEvent)]


@torch.no_grad()
def generate(model: torch.nn.Module, vocab: Vocab, prompt: str, n_chars: int,
             temperature: float = 0.0, seed: int = 0, context: int | None = None) -> str:
    """Continue `prompt` by n_chars tokens (characters for gpt-tiny); temperature 0 is
    greedy (deterministic). `model(ids)` gives (N, T, vocab) logits; `context` (the window
    it sees) defaults to a GPT's own."""
    check_number("n_chars", n_chars, 0, 100_000, integer=True)
    check_number("temperature", temperature, 0.0, 100.0)
    if not prompt:
        raise ValueError("prompt must not be empty")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids = vocab.encode(prompt, device)[None, :]
    generator = torch.Generator().manual_seed(seed)
    if context is None:
        context = int(as_gpt_config(model).context)
    for _ in range(n_chars):
        logits = model(ids[:, -context:])[0, -1]
        if temperature == 0.0:
            nxt = logits.argmax().view(1, 1)
        else:
            probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator).view(1, 1).to(device)
        ids = torch.cat([ids, nxt], dim=1)
    model.train(was_training)
    return vocab.decode(ids[0, -n_chars:]) if n_chars else ""


def as_gpt_config(model: torch.nn.Module) -> GPTConfig:
    if not isinstance(model, GPT):
        raise ValueError(f"generate() needs context= for a {type(model).__name__}")
    return model.config


@torch.no_grad()
def next_char_distribution(model: GPT, vocab: Vocab, prompt: str, temperature: float = 1.0,
                           top_k: int = 10) -> list[tuple[str, float]]:
    """The softened next-character distribution after `prompt` (for the T slider)."""
    check_number("temperature", temperature, 1e-3, 100.0)
    was_training = model.training
    model.eval()
    ids = vocab.encode(prompt, next(model.parameters()).device)[None, -model.config.context:]
    probs = torch.softmax(model(ids)[0, -1].float() / temperature, dim=-1)
    model.train(was_training)
    top = torch.topk(probs, min(top_k, probs.numel()))
    return [(vocab.chars[i], float(p)) for p, i in zip(top.values, top.indices.tolist())]


SAMPLE_PROMPT = "The for statement is used to "

