"""Tiny transformers models built from configs (nothing downloaded) and saved to disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def tiny(kind: str, num_labels: int = 3):
    """A transformers model of `kind` with tiny widths, seeded."""
    import transformers as T

    torch.manual_seed(0)
    if kind == "resnet":
        cfg = T.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                             layer_type="basic", num_labels=num_labels)
        return T.ResNetForImageClassification(cfg)
    if kind == "mobilenetv2":
        cfg = T.MobileNetV2Config(depth_multiplier=0.25, image_size=32, num_labels=num_labels)
        return T.MobileNetV2ForImageClassification(cfg)
    if kind == "convnext":
        cfg = T.ConvNextConfig(num_channels=3, patch_size=2, hidden_sizes=[8, 16],
                               depths=[1, 1], num_stages=2, image_size=32,
                               num_labels=num_labels)
        model = T.ConvNextForImageClassification(cfg)
        with torch.no_grad():  # layer scale starts at 1e-6: make the blocks count
            for name, p in model.named_parameters():
                if name.endswith("layer_scale_parameter"):
                    p.uniform_(0.5, 1.5)
        return model
    if kind == "vit":
        cfg = T.ViTConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=32, image_size=32, patch_size=8,
                          num_labels=num_labels)
        return T.ViTForImageClassification(cfg)
    if kind == "bert":
        cfg = T.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=32,
                           max_position_embeddings=32, num_labels=num_labels)
        return T.BertForSequenceClassification(cfg)
    if kind == "gpt2":
        cfg = T.GPT2Config(vocab_size=50, n_embd=16, n_layer=2, n_head=4, n_positions=32)
        return T.GPT2LMHeadModel(cfg)
    raise ValueError(kind)


def saved(kind: str, folder: Path, num_labels: int = 3) -> Path:
    """Save a tiny model of `kind` with save_pretrained; return its folder."""
    model = tiny(kind, num_labels)
    # Random BatchNorm statistics, so masked-vs-shrunk compares more than the identity.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    path = folder / kind
    model.save_pretrained(path)
    return path


def digits_folder(root: Path, per_class: int | None = None, classes: int = 10,
                  size: int = 16) -> Path:
    """scikit-learn's 8x8 digits upscaled to size x size PNGs, one folder per class."""
    from PIL import Image

    from explorer.data.datasets import DIGITS_FILE

    with np.load(DIGITS_FILE) as shipped:
        x, y = shipped["data"], shipped["target"]
    root.mkdir(parents=True, exist_ok=True)
    for c in range(classes):
        (root / str(c)).mkdir(exist_ok=True)
        rows = np.flatnonzero(y == c)[:per_class]
        for i in rows:
            img = Image.fromarray((x[i].reshape(8, 8) * 16).clip(0, 255).astype(np.uint8))
            img.resize((size, size), Image.NEAREST).save(root / str(c) / f"{i}.png")
    return root


def gpt2(folder, vocab: int = 128, positions: int = 64):
    """A 2-layer, 4-head GPT-2 (n_embd 32) from a config, saved; char ids are token ids."""
    import transformers as T

    torch.manual_seed(0)
    cfg = T.GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=positions,
                       bos_token_id=0, eos_token_id=0)
    path = folder / f"gpt2-{vocab}-{positions}"
    T.GPT2LMHeadModel(cfg).save_pretrained(path)
    return path


def gpt2_bpe(folder, vocab: int = 300, positions: int = 64):
    """A tiny GPT-2 with a byte-level BPE trained here on the pydoc-text training split,
    saved beside it (so hf:FOLDER reads the corpus with its own tokenizer)."""
    import transformers as T

    from explorer.data.text import load_pydoc_text
    from explorer.models.bpe import train_bpe

    corpus = load_pydoc_text(context=32)
    text = corpus.vocab.decode(corpus.train[:60_000])
    tok = train_bpe([text[i:i + 4000] for i in range(0, len(text), 4000)], vocab)
    torch.manual_seed(0)
    cfg = T.GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4,
                       n_positions=positions, bos_token_id=0, eos_token_id=0)
    path = folder / f"gpt2-bpe-{vocab}"
    T.GPT2LMHeadModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path
