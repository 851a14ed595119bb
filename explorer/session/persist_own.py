"""Saving a session on your own data or model (issue 18): what the file holds, how it reopens.

A session on an ``hf:`` model (image or sequence classifier) saves like a zoo session, plus
the model's transformers config (explorer.models.hf.describe) under the config's "hf" key:
on load the architecture is rebuilt from that config (first on `meta`, inside the bounded
load checks of loadshape, so a file claiming a huge model is refused before any memory is
taken) and the weights come from the file, so the model's folder need not exist any more.
``imagefolder:PATH`` data is saved as its path: the images are not in the file, and loading
re-reads the folder (split again by the saved seed) or refuses, naming the folder, when it
is gone. Data given as tensors is still refused; a language model on text: persist_lm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..config import DATASETS, MODELS
from ..data.images import folder_of

if TYPE_CHECKING:
    from .host import Host

OWN_DATA, OWN_MODEL, HF_KEY = "imagefolder:", "hf:", "hf"
SPEC_MAX = 4096  # characters of a saved path spec


KEEP = ("What can be kept: the model, with export(path, 'masked' | 'zeros' | 'shrunk'); "
        "the curves, with session.history")


def hf_description(model: torch.nn.Module) -> dict:
    """explorer.models.hf.describe of an hf: teacher (ValueError for any other model)."""
    from ..models.hf import HFModel, describe

    if not isinstance(model, HFModel):
        raise ValueError(f"an hf: session's teacher must be an HFModel; got "
                         f"{type(model).__name__}")
    return describe(model)


def save_extra(session: Host) -> dict:
    """The keys the file's teacher config adds ({} for the zoo), or a ValueError saying
    plainly what is not saved and what can be kept instead."""
    config = session.slots["teacher"].config
    dataset, model = config.get("dataset"), config.get("model")
    keep = KEEP
    if model not in MODELS and not str(model).startswith(OWN_MODEL):
        raise ValueError(f"Session.save does not save a session around a user model "
                         f"({model!r}): none of it is written. {keep}")
    if dataset not in DATASETS and not str(dataset).startswith(OWN_DATA):
        raise ValueError(f"Session.save does not save a session on data given as tensors "
                         f"({dataset!r}): the file names its data, it does not hold it; "
                         f"none of the session is written. {keep}")
    if model in MODELS:
        if dataset not in DATASETS:  # a zoo model's shapes come from a built-in data set
            raise ValueError(f"Session.save does not save a zoo model on data read from a "
                             f"folder ({dataset!r}): none of it is written. {keep}")
        return {}
    return {HF_KEY: hf_description(session.slots["teacher"].model)}


def check_own_config(config: dict) -> None:
    """Loading: a saved path spec and the hf description, checked as plain data."""
    for key, prefix, known in (("dataset", OWN_DATA, DATASETS), ("model", OWN_MODEL, MODELS)):
        value = config[key]
        if value in known:
            continue
        if not (isinstance(value, str) and value.startswith(prefix) and len(value) < SPEC_MAX):
            raise ValueError(f"config {key} must be one of {', '.join(known)} or "
                             f"{prefix}PATH; got {str(value)[:60]!r}")
    own_model = config["model"] not in MODELS
    if own_model != (HF_KEY in config):
        raise ValueError("config hf must be present exactly when the model is hf:PATH")
    if config["dataset"] not in DATASETS and not own_model:
        raise ValueError("config: a zoo model is saved on built-in data only")
    if own_model:
        desc = config[HF_KEY]
        if not isinstance(desc, dict) or not isinstance(desc.get("config"), dict):
            raise ValueError("config hf must be a dict holding the model's config")


def hf_on_meta(config: dict) -> nn.Module:
    """The saved hf architecture, built on the `meta` device (no memory)."""
    from ..models.hf import from_description

    return from_description(config[HF_KEY])


def reopen(cls: type, config: dict, device: str | None) -> Any:
    """A session of `cls` on the saved data, around the saved hf architecture (untrained;
    the caller restores the slots). ValueError naming a data folder that is gone."""
    from ..models.hf import from_description

    dataset = config["dataset"]
    if dataset.startswith(OWN_DATA) and not folder_of(dataset).is_dir():  # tag and all
        raise ValueError(f"the session's data folder {folder_of(dataset)} is gone: the "
                         "file holds the model and its history, not the images; put the "
                         "folder back to load it")
    with torch.random.fork_rng(devices=[]):  # the weights come from the file anyway
        model = from_description(config[HF_KEY])
    return cls(dataset, model, seed=config["seed"], device=device, pretrained=False)


def without_extra(config: dict) -> dict:
    """The slot config as the session keeps it (the hf description and a language model's
    vocabulary, persist_lm's "lm", live in files only)."""
    return {k: v for k, v in config.items() if k not in (HF_KEY, "lm")}
