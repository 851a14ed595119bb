"""Your own model, measured (issue 18): transformers models opened from folders.

- byo_slider_first_ms: a structured slider move on an 11M-parameter ResNet-18-shaped
  transformers ResNet (32 x 32 digits images from an image folder, 10 classes) until the
  first headline (Session.prune, which answers from the 256-sample subset on the compact
  twin of engine.compact, then the
  headline's HTML; no widgets), p50.
- byo_shrink_speedup_b64: that model, 50% of every graph group's channels removed and
  shrunk, against the dense one: CPU latency ratio at batch 64.
- hf_heads_removed_ppl: a 2-layer GPT-2 built from a config, trained briefly on pydoc-text,
  25% of its heads removed through the graph groups and shrunk: perplexity before / after.
Besides: parameter counts and test accuracies of the ResNet trained on the digits folder,
dense, pruned (50% structured) and fine-tuned. Everything is built in a temporary folder;
nothing is downloaded. torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from pathlib import Path

from ..files import atomic_file

BYO_KEYS = ("byo_slider_first_ms", "byo_shrink_speedup_b64", "hf_heads_removed_ppl")
BYO_TARGETS = {"byo_slider_first_ms": "<= 300", "byo_shrink_speedup_b64": ">= 1.6",
               "hf_heads_removed_ppl": "after / before, lower is better"}
SLIDER = (0.1, 0.5, 0.3, 0.7, 0.2, 0.6, 0.4, 0.8)


def resnet_folder(root: Path, tiny: bool) -> Path:
    """A ResNet-18-shaped (11.2M parameters; tiny: a few thousand) ResNet, saved."""
    import torch
    import transformers as T

    from ..models.hf import no_progress_bars

    torch.manual_seed(0)
    sizes, depths = ([8, 16], [1, 1]) if tiny else ([64, 128, 256, 512], [2, 2, 2, 2])
    cfg = T.ResNetConfig(embedding_size=sizes[0], hidden_sizes=sizes, depths=depths,
                         layer_type="basic")
    cfg.num_labels = 10  # a PretrainedConfig setting (its id2label follows)
    with no_progress_bars():
        T.ResNetForImageClassification(cfg).save_pretrained(root / "resnet")
    return root / "resnet"


def digits_folder(root: Path, per_class: int | None) -> Path:
    """scikit-learn's digits as 32 x 32 PNGs, one folder per class."""
    import numpy as np
    from PIL import Image

    from ..data.datasets import DIGITS_FILE

    with np.load(DIGITS_FILE) as shipped:
        x, y = shipped["data"], shipped["target"]
    for c in range(10):
        (root / "digits" / str(c)).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(y == c)[:per_class]:
            img = Image.fromarray((x[i].reshape(8, 8) * 16).clip(0, 255).astype(np.uint8))
            with atomic_file(root / "digits" / str(c) / f"{i}.png") as handle:
                img.resize((32, 32), Image.Resampling.BILINEAR).save(handle, format="PNG")
    return root / "digits"


def resnet_figures(root: Path, tiny: bool, quick: bool) -> dict:
    import copy

    from ..engine.structure import count_params
    from ..session.session import Session
    from ..ui.headline import Metric, headline_html
    from .models import latency_pair

    data = digits_folder(root, 20 if tiny else None)
    session = Session(f"imagefolder:{data}", f"hf:{resnet_folder(root, tiny)}", seed=0)
    out: dict = {"byo_params_dense": count_params(session.model)}
    epochs = 1 if tiny else 3 if quick else 6
    session.train(epochs=epochs, lr=1e-3)
    out["byo_test_acc_dense"] = session.snapshot("test").accuracy
    session.prune(sparsity=0.05, structured=True)  # traces the graph once (cached)
    times = []
    for value in SLIDER[:3] if tiny else SLIDER:
        start = time.perf_counter()
        snap = session.prune(sparsity=value, structured=True)
        headline_html(snap, Metric("accuracy", True), None, "teacher")
        times.append((time.perf_counter() - start) * 1e3)
    out["byo_slider_first_ms"] = statistics.median(times)
    out["byo_slider_subset"] = snap.extra.get("eval_samples")
    session.prune(sparsity=0.5, structured=True)
    out["byo_test_acc_pruned50"] = session.snapshot("test").accuracy
    small = session.shrink()
    out["byo_params_shrunk"] = count_params(small)
    session.reset_pruning()
    dense = copy.deepcopy(session.model)
    x = session.data.val.x
    x64 = x[:64] if len(x) >= 64 else x.repeat(64 // len(x) + 1, 1, 1, 1)[:64]
    pairs, calls = (2, 2) if tiny else (5, 5)
    out["byo_shrink_speedup_b64"] = latency_pair(dense, small, x64, pairs, calls)
    session.prune(sparsity=0.5, structured=True)
    session.train(epochs=1 if tiny else 2, lr=1e-4)
    out["byo_test_acc_finetuned"] = session.snapshot("test").accuracy
    return out


def gpt2_heads_figures(root: Path, tiny: bool, quick: bool) -> dict:
    """Perplexity of a small trained GPT-2 before and after removing 25% of its heads."""
    import torch
    import torch.nn.functional as F
    import transformers as T

    from ..data.text import load_pydoc_text
    from ..engine.attention import graph_of, graph_shrink
    from ..engine.graph import graph_masks
    from ..models.hf import load_hf, no_progress_bars

    corpus = load_pydoc_text(context=64)
    torch.manual_seed(0)
    cfg = T.GPT2Config(vocab_size=len(corpus.vocab.chars), n_embd=32 if tiny else 128,
                       n_layer=2, n_head=4, n_positions=64,
                       bos_token_id=None, eos_token_id=None)
    with no_progress_bars():
        T.GPT2LMHeadModel(cfg).save_pretrained(root / "gpt2")
    model = load_hf(f"hf:{root / 'gpt2'}").train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20 if tiny else 150 if quick else 400):
        x, y = corpus.get_batch("train", 32, gen)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    xv, yv = corpus.windows("val", 64 if tiny else 256)

    @torch.no_grad()
    def ppl(m: torch.nn.Module) -> float:
        return math.exp(F.cross_entropy(m.eval()(xv).flatten(0, 1), yv.flatten()).item())

    before = ppl(model)
    heads = [g for g in graph_of(model)[0] if g.kind == "heads"]
    masks, _ = graph_masks(dict(model.named_parameters()), heads, 0.25, "l1")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in masks:
                p.mul_(masks[name])
    small = graph_shrink(model)
    return {"hf_heads_removed_ppl": {"before": before, "after": ppl(small)},
            "hf_heads_masked_ppl": ppl(model),
            "hf_heads_kept": [small.get_submodule(g.name).num_heads for g in heads]}


def byo_figures(tiny: bool, quick: bool = False) -> dict:
    """Every issue-18 figure; needs transformers (the [hf] extra) and torch-pruning."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="explorer-byo-") as tmp:
        out = resnet_figures(Path(tmp), tiny, quick)
        out.update(gpt2_heads_figures(Path(tmp), tiny, quick))
    return out
