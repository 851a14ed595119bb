"""How a Session is made from names or objects: its data, first model slot and task.

Session.__init__ checks the device, seed and `pretrained`, asks `session_parts` for the
parts and stores them with Session._setup (persist and persist_lm rebuild sessions through
_setup too). Bad arguments raise ValueError before any data loads where they can.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from ..config import GPT_MODELS
from ..data.datasets import Dataset
from ..data.text import TextCorpus
from ..engine import checkpoint as ckpt
from ..engine.attention import give_example
from ..models.hf import is_hf
from ..models.zoo import build_model, check_fits
from ..validate import check_hidden, check_model, check_width
from . import core, language
from .slots import ModelSlot, clone_state
from .tasks import Task, check_pairing, is_text_request, objective_for


class Parts(NamedTuple):
    """What Session._setup stores: the data, the teacher's slot, the task, and a shipped
    checkpoint's history (None: trained from scratch)."""

    data: Dataset
    slot: ModelSlot
    objective: Task
    history: list[dict] | None = None


def session_parts(dataset: str | Path | Dataset | TextCorpus | None,
                  model: str | nn.Module | None, *, width: float, init: str, seed: int,
                  device: torch.device, pretrained: bool, hidden: tuple[int, ...] | None,
                  train: object, val: object, test: object, task: str,
                  layers: int | None, heads: int | None, context: int,
                  max_train_windows: int | None, max_params: int | None) -> Parts:
    """The parts of Session(dataset, model, ...) (see Session.__init__ for the arguments)."""
    if model is None:  # the zoo's default for the data: gpt-tiny on text, else the MLP
        model = GPT_MODELS[0] if is_text_request(dataset, None) else "mlp"
    check_pairing(dataset, model)
    if is_text_request(dataset, model):
        for name, value in (("hidden", hidden), ("train", train), ("val", val),
                            ("test", test)):
            if value is not None:
                raise ValueError(f"{name}= does not apply to a language model on text")
        return Parts(*language.text_parts(dataset, model, width, init, seed, device, layers,
                                          heads, context, max_train_windows,
                                          max_params=max_params))
    language.check_not_text_options(layers, heads, context, max_train_windows)
    width, hidden = check_width(width), check_hidden(hidden)  # before any data loads
    if isinstance(model, nn.Module):
        check_model(model, type(model).__name__)
    data = core.load_data(dataset, train, val, test, task, seed, device).to(device)
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
    return Parts(data, ModelSlot(net, name, config, initial), objective_for(data), shipped)
