"""Saving a language-model session (issue 18): gpt-tiny or an ``hf:`` causal LM on text.

The file holds what persist.py holds for any session (weights, dense base, masks, undo,
rewind points, history; head and neuron removal are masks, so they come back with them),
plus what continuing needs under the config's "lm" key: the vocabulary (the characters
whose ids the model was trained on) and how many training windows the session used. The
corpus itself is not in the file: a built-in corpus is rebuilt from its name, context and
seed, and loading refuses, naming both, when its vocabulary is not the saved one. A
corpus read from a user's own text file is not saved (the session keeps its file name
only), said plainly. An ``hf:`` model's architecture is rebuilt from its saved
transformers config, as for image models (persist_own). gpt-tiny students are saved with
their GPT sizes as their "arch".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..config import GPT_MODELS, TEXT_DATASETS
from ..engine.lm import build_gpt
from ..models.gpt import GPT, GPTConfig
from ..models.zoo import build_from_arch
from .persist_own import HF_KEY, OWN_MODEL, hf_description, hf_on_meta
from .tasks import text_corpus

if TYPE_CHECKING:
    from .host import Host

LM_KEY = "lm"
LM_CONFIG_KEYS = ("layers", "heads", "d_model", "context", LM_KEY)
GPT_ARCH = ("vocab_size", "context", "n_layers", "n_heads", "d_model", "mlp_ratio")


def lm_extra(session: Host, keep: str) -> dict:
    """The keys a language-model session's file config adds, or a ValueError saying
    plainly what is not saved (`keep`: what can be kept instead)."""
    config = session.slots["teacher"].config
    corpus = text_corpus(session, "saving")
    if corpus.name not in TEXT_DATASETS:
        raise ValueError(f"Session.save does not save a language-model session on your own "
                         f"text ({corpus.name!r}): the session keeps the file's name, not its "
                         f"path or text; none of it is written. {keep}")
    chars = getattr(corpus, "char_vocab", None) or corpus.vocab  # a tokenizer's: its chars
    extra: dict = {LM_KEY: {"vocab": chars.chars,
                            "train_windows": int(session.data.train.x.shape[0]),
                            # read with the folder's own tokenizer: reopening needs it
                            "tokenizer": getattr(corpus, "char_vocab", None) is not None}}
    if str(config["model"]).startswith(OWN_MODEL):
        extra[HF_KEY] = hf_description(session.slots["teacher"].model)
    return extra


def check_lm_config(config: dict) -> None:
    """Loading: a language-model config as plain data (names, sizes, the vocabulary)."""
    if config["dataset"] not in TEXT_DATASETS:
        raise ValueError(f"config dataset must be one of {', '.join(TEXT_DATASETS)} for a "
                         f"language model; got {str(config['dataset'])[:60]!r}")
    model = config["model"]
    own = isinstance(model, str) and model.startswith(OWN_MODEL)
    if model not in GPT_MODELS and not own:
        raise ValueError(f"config model must be one of {', '.join(GPT_MODELS)} or "
                         f"{OWN_MODEL}PATH for text; got {str(model)[:60]!r}")
    if own != (HF_KEY in config):
        raise ValueError("config hf must be present exactly when the model is hf:PATH")
    lm = config[LM_KEY]
    if not isinstance(lm, dict) or not isinstance(lm.get("vocab"), str) or \
            not 2 <= len(lm["vocab"]) <= 100_000:
        raise ValueError("config lm must hold the vocabulary (2 to 100000 characters)")
    for key in ("train_windows", "context", *(() if own else ("layers", "heads", "d_model"))):
        value = lm["train_windows"] if key == "train_windows" else config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**7:
            raise ValueError(f"config {key} must be a whole number in 1..10000000; got "
                             f"{str(value)[:40]}")


def lm_on_meta(config: dict) -> nn.Module:
    """The saved language model's architecture (the caller builds it on `meta`)."""
    if HF_KEY in config:
        return hf_on_meta(config)
    return build_gpt(len(config[LM_KEY]["vocab"]), config["context"], config["layers"],
                     config["heads"], config["d_model"])


def reopen_lm(cls: type, config: dict, device: str | None) -> Any:
    """A session of `cls` on the saved corpus around the saved architecture (untrained;
    the caller restores the slots); ValueError when the corpus's vocabulary changed."""
    lm, seed = config[LM_KEY], config["seed"]
    if HF_KEY in config:
        session = _reopen_hf(cls, config, device)
    else:
        session = cls(config["dataset"], config["model"], width=config["width"],
                      init=config["init"], seed=seed, device=device, layers=config["layers"],
                      heads=config["heads"], context=config["context"],
                      max_train_windows=lm["train_windows"])
    corpus = session.objective.corpus
    vocab = (getattr(corpus, "char_vocab", None) or corpus.vocab).chars
    if vocab != lm["vocab"]:
        raise ValueError(f"the corpus {config['dataset']!r} now has a vocabulary of "
                         f"{len(vocab)} characters; the file's model was trained on "
                         f"{len(lm['vocab'])} others, so its ids would not match")
    return session


def _reopen_hf(cls: Any, config: dict, device: str | None) -> Any:
    from ..models.hf import from_description
    from ..validate import check_device_available
    from . import language
    from .core import pick_device

    torch_device = check_device_available(pick_device(device))
    corpus = language.load_corpus(config["dataset"], config["context"], config["seed"],
                                  torch_device)
    with torch.random.fork_rng(devices=[]):  # the weights come from the file anyway
        net = from_description(config[HF_KEY])
    data, slot, objective = language.own_text_parts(
        config["model"], corpus, config["seed"], torch_device,
        config[LM_KEY]["train_windows"], net=net,
        own_tokenizer=bool(config[LM_KEY].get("tokenizer", False)))
    session = cls.__new__(cls)
    session._setup(data, slot, objective, seed=config["seed"], device=torch_device)
    return session


def arch_of(model: nn.Module) -> dict | None:
    """A gpt-tiny student's sizes as its plain "arch" (None for other models)."""
    if not isinstance(model, GPT):
        return None
    return {"name": "gpt", **{k: int(getattr(model.config, k)) for k in GPT_ARCH}}


def build_arch(arch: dict) -> nn.Module:
    """Rebuild a student from its "arch": a GPT's sizes, or the zoo's description."""
    if arch.get("name") == "gpt":
        return GPT(GPTConfig(**{k: int(arch[k]) for k in GPT_ARCH}))
    return build_from_arch(arch)
