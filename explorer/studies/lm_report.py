"""The large-model track's measured table: teacher, pruned teachers, students.

    python -m explorer.studies.lm_report --threads 1  # full: 916 s measured on a loaded 2-core box
    python -m explorer.studies.lm_report --quick      # tiny sizes (smoke tests / CLI)

Every row reports validation and test perplexity, next-character accuracy, parameters,
nonzero parameters, latency per generated character (greedy, batch 1, best of 3:
the minimum is the least disturbed by other processes on a shared machine) and a greedy
sample from a fixed prompt. Nothing is tuned on test.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ..config import PruneConfig
from ..data.text import TextCorpus, load_pydoc_text, unigram_perplexity
from ..engine.heads import head_scores, magnitude_prune, plan_head_removal, remove_heads
from ..engine.lm import (
    SAMPLE_PROMPT,
    build_gpt,
    build_student,
    evaluate_lm,
    generate,
    train_lm_steps,
)
from ..engine.train import StepEvent
from ..files import write_text
from ..models.gpt import GPT, count_params

PROMPT = SAMPLE_PROMPT
SAMPLE_CHARS = 60
# quick: a smoke run; full: the default gpt-tiny teacher. The teacher gets twice the
# students' budget: a teacher is trained well before anyone distils it (with equal
# budgets the 2-layer student out-trained the 4-layer teacher at 500 steps).
@dataclass(frozen=True)
class Size:
    """One report's sizes: (n_layers, n_heads, d_model) of teacher and student, steps."""

    context: int
    teacher: tuple[int, int, int]
    student: tuple[int, int, int]
    steps: int
    teacher_steps: int
    finetune: int
    eval_windows: int | None
    repeats: int


SIZES = {
    True: Size(context=32, teacher=(2, 4, 64), student=(1, 4, 64), steps=150,
               teacher_steps=300, finetune=30, eval_windows=256, repeats=1),
    False: Size(context=64, teacher=(4, 4, 128), student=(2, 4, 128), steps=500,
                teacher_steps=1000, finetune=100, eval_windows=None, repeats=3),
}
KD_TEMPERATURE = 2.0
KD_ALPHA = 0.5


def measure(model: GPT, corpus: TextCorpus, repeats: int = 3,
            eval_windows: int | None = None) -> dict:
    """Perplexity / accuracy on val and test (all windows by default), sizes, latency per
    generated character, a greedy sample."""
    val = evaluate_lm(model, corpus, "val", eval_windows)
    test = evaluate_lm(model, corpus, "test", eval_windows)
    params, nonzero = count_params(model)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sample = generate(model, corpus.vocab, PROMPT, SAMPLE_CHARS)
        times.append((time.perf_counter() - start) / SAMPLE_CHARS)
    return {"val_perplexity": val["perplexity"], "val_accuracy": val["accuracy"],
            "test_perplexity": test["perplexity"], "test_accuracy": test["accuracy"],
            "params": params, "nonzero": nonzero,
            "ms_per_char": 1000 * min(times), "sample": sample}


def _timed(log: Callable[[str], None], label: str, fn: Callable[[], GPT]) -> GPT:
    start = time.perf_counter()
    model = fn()
    log(f"{label}: {time.perf_counter() - start:.1f} s")
    return model


def build_rows(corpus: TextCorpus, size: Size, seed: int,
               log: Callable[[str], None]) -> list[tuple[str, GPT]]:
    """Train the teacher, derive the pruned teachers, train the three students."""
    steps, vocab, ctx = size.steps, len(corpus.vocab), size.context

    def train(model: GPT, **kw) -> GPT:
        n = kw.pop("steps", steps)
        for event in train_lm_steps(model, corpus, n, batch_size=32, seed=seed, **kw):
            if isinstance(event, StepEvent) and event.step % 100 == 0:
                log(f"  step {event.step}/{n} loss {event.loss:.3f}")
        return model

    teacher = _timed(log, "teacher", lambda: train(build_gpt(vocab, ctx, *size.teacher,
                                                              seed=seed),
                                                    steps=size.teacher_steps))
    rows = [("teacher", teacher)]
    for sparsity in (0.5, 0.8):
        pruned = copy.deepcopy(teacher)
        magnitude_prune(pruned, PruneConfig(sparsity=sparsity, scope="layer"))
        rows.append((f"teacher, {sparsity:.0%} unstructured (Linear weights, per layer)",
                     pruned))
    tuned = copy.deepcopy(teacher)
    masks = magnitude_prune(tuned, PruneConfig(sparsity=0.8, scope="layer")).masks
    _timed(log, "fine-tune", lambda: train(tuned, masks=masks, steps=size.finetune,
                                           lr=1e-3))
    rows.append((f"teacher, 80% unstructured + {size.finetune} fine-tune steps", tuned))
    batch = corpus.windows("val", 32)  # loss ranking uses validation, never test
    for ranking in ("l1", "loss"):
        shrunk = copy.deepcopy(teacher)
        remove_heads(shrunk, plan_head_removal(head_scores(shrunk, ranking, batch), 0.25))
        rows.append((f"teacher, 25% of heads removed ({ranking} ranking)", shrunk))
    n_layers, n_heads, d_model = size.student

    def student(init: str) -> GPT:
        return build_student(teacher, n_layers, d_model, n_heads, init=init, seed=seed + 1)

    kd = dict(teacher=teacher, temperature=KD_TEMPERATURE, alpha=KD_ALPHA)
    rows.append(("student alone (random init, CE)",
                 _timed(log, "student", lambda: train(student("random")))))
    rows.append(("student from every other teacher layer, CE only",
                 _timed(log, "student (teacher init)", lambda: train(student("teacher")))))
    rows.append(("student distilled (random init, KD)",
                 _timed(log, "kd student", lambda: train(student("random"), **kd))))
    rows.append(("student distilled (every other teacher layer, KD)",
                 _timed(log, "kd student (teacher init)",
                        lambda: train(student("teacher"), **kd))))
    return rows


def markdown_table(rows: list[dict]) -> str:
    head = ("| model | val ppl | test ppl | val acc | params | nonzero | ms/char | sample |\n"
            "|---|---|---|---|---|---|---|---|\n")
    lines = [f"| {r['model']} | {r['val_perplexity']:.2f} | {r['test_perplexity']:.2f} | "
             f"{r['val_accuracy']:.3f} | {r['params']:,} | {r['nonzero']:,} | "
             f"{r['ms_per_char']:.2f} | `{r['sample']!r}` |" for r in rows]
    return head + "\n".join(lines)


def gpt_report(quick: bool = False, seed: int = 0, device: str = "cpu", threads: int = 2,
               log: Callable[[str], None] = lambda _: None, steps: int | None = None) -> dict:
    """Build, train, prune and distil; return the config, the rows and a markdown table.

    `steps` overrides the students' training steps (the teacher gets twice, fine-tuning
    a fifth).
    """
    torch.set_num_threads(threads)
    size = SIZES[quick]
    if steps is not None:
        size = replace(size, steps=steps, teacher_steps=2 * steps, finetune=max(1, steps // 5))
    corpus = load_pydoc_text(context=size.context, seed=seed, device=device)
    start = time.perf_counter()
    rows = []
    for label, model in build_rows(corpus, size, seed, log):
        rows.append({"model": label,
                     **measure(model, corpus, size.repeats, size.eval_windows)})
        log(f"measured {label}")
    return {
        "dataset": "pydoc-text", "model": "gpt-tiny", "quick": quick, "seed": seed,
        "device": device, "threads": threads, "context": size.context,
        "teacher": dict(zip(("n_layers", "n_heads", "d_model"), size.teacher)),
        "student": dict(zip(("n_layers", "n_heads", "d_model"), size.student)),
        "steps": size.steps, "teacher_steps": size.teacher_steps, "batch_size": 32,
        "kd_temperature": KD_TEMPERATURE,
        "kd_alpha": KD_ALPHA, "finetune_steps": size.finetune, "prompt": PROMPT,
        "unigram_val_perplexity": unigram_perplexity(corpus, "val"),
        "seconds": time.perf_counter() - start, "rows": rows,
        "markdown": markdown_table(rows),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    report = gpt_report(args.quick, args.seed, args.device, args.threads,
                        log=lambda m: print(m, flush=True))
    print(f"unigram val perplexity {report['unigram_val_perplexity']:.2f}; "
          f"total {report['seconds']:.0f} s")
    print(report["markdown"])
    if args.json:
        write_text(args.json, json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
