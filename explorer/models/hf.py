"""Hugging Face transformers models from a local folder: ``model="hf:PATH"``.

``from_pretrained(PATH, local_files_only=True)`` with the hub switched off: nothing is
downloaded. transformers is imported here only, when an ``hf:`` model is asked for (it adds
about a second and tens of MB to a kernel; docs/own-model.md). The model is wrapped
once in `HFModel`, whose forward takes a tensor and returns the logits tensor, so metrics,
distillation and the app treat it like any module. Two conversions make the engine's view
honest: GPT-2's ``Conv1D`` layers (a Linear with a transposed weight) become ``nn.Linear``
(the magnitude masks, the per-layer views and the dependency graph know Linear), and a tied
output embedding is untied (the explorer prunes each layer's own weight).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import check_params
from ..files import read_error

PREFIX = "hf:"
WEIGHT_SUFFIXES = (".bin", ".safetensors", ".pt", ".pth")
KINDS = ("image", "sequence", "causal-lm")
SEQUENCE_EXAMPLE_LEN = 8  # tokens in the example input that traces a text model's graph


def is_hf(model: object) -> bool:
    return isinstance(model, str) and model.startswith(PREFIX)


class HFModel(nn.Module):
    """A transformers model seen as ``forward(x) -> logits``.

    kind "image": x is (N, C, H, W) pixels (or flat, reshaped to `image_shape`);
    "sequence" and "causal-lm": x holds token ids (N, T). A causal LM returns (N, T, vocab).
    """

    def __init__(self, inner: nn.Module, kind: str,
                 image_shape: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        self.inner, self.kind = inner, kind
        self.image_shape = tuple(image_shape) if image_shape is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "image":
            if x.ndim == 2 and self.image_shape is not None:
                x = x.view(len(x), *self.image_shape)
            return self.inner(pixel_values=x).logits
        if self.kind == "causal-lm":
            return self.inner(input_ids=x.long(), use_cache=False).logits
        return self.inner(input_ids=x.long()).logits

    def example_input(self, batch: int = 2) -> torch.Tensor:
        """A small input of the right shape and type (traces the dependency graph)."""
        device = next(self.parameters()).device
        cfg: Any = self.inner.config  # a transformers PretrainedConfig
        if self.kind == "image":
            shape = self.image_shape or (getattr(cfg, "num_channels", 3),
                                         *([int(getattr(cfg, "image_size", 32))] * 2))
            return torch.randn(batch, *shape, device=device)
        vocab = int(cfg.vocab_size)
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(0, vocab, (batch, SEQUENCE_EXAMPLE_LEN), generator=gen)
        return ids.to(device)

    def output_layer(self) -> str:
        """Name of the layer writing the logits (its outputs are never pruned)."""
        last = [n for n, m in self.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        head = _embeddings(self.inner, "output") if self.kind == "causal-lm" else None
        if head is not None:
            return next(n for n, m in self.named_modules() if m is head)
        return last[-1]


def _kind(architectures: list[str]) -> str | None:
    for arch in architectures:
        if arch.endswith("ForImageClassification"):
            return "image"
        if arch.endswith("ForSequenceClassification"):
            return "sequence"
        if arch.endswith(("ForCausalLM", "LMHeadModel")):
            return "causal-lm"
    return None


def _conv1d_to_linear(model: nn.Module) -> None:
    """Swap transformers' Conv1D (y = x W + b, W: in x out) for the equal nn.Linear."""
    from transformers.pytorch_utils import Conv1D

    for name, module in list(model.named_modules()):
        if isinstance(module, Conv1D):
            with torch.device("meta"):  # no random init: the weights are assigned below
                linear = nn.Linear(module.nx, module.nf)
            linear.weight = nn.Parameter(module.weight.detach().t().contiguous())
            linear.bias = nn.Parameter(module.bias.detach().clone())
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, linear)


def _embeddings(model: Any, which: str) -> Any:
    try:  # vision models raise NotImplementedError: they have no token embeddings
        return getattr(model, f"get_{which}_embeddings")()
    except (NotImplementedError, AttributeError):
        return None


def _untie(model: Any) -> None:
    out, inp = _embeddings(model, "output"), _embeddings(model, "input")
    if out is not None and inp is not None and out.weight is inp.weight:
        out.weight = nn.Parameter(inp.weight.detach().clone())
        model.config.tie_word_embeddings = False


CONFIG_BYTES_MAX = 4 * 2**20  # a config.json is a few KiB; past this it is not one


def read_config(path: Path) -> dict:
    """The folder's config.json as plain data, read by us before transformers sees the
    folder. A config with ``auto_map`` asks transformers to import Python files from the
    folder (and, unasked, to prompt on standard input): refused here, naming the field."""
    file = path / "config.json"
    try:
        if file.stat().st_size > CONFIG_BYTES_MAX:
            raise ValueError(f"hf: {file} is over {CONFIG_BYTES_MAX // 2**20} MiB; not a "
                             "model config")
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"hf: cannot read the config in {path}: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"hf: {file} holds {type(data).__name__}, not a config object")
    if "auto_map" in data:
        raise ValueError(f"hf: {file} has an auto_map field: it names Python code in the "
                         "folder for transformers to run, and the explorer never runs a "
                         "model's own code (trust_remote_code=False); use a model type "
                         "transformers ships")
    return data


def count_on_meta(auto: Any, config: Any) -> int:
    """Parameters of the model `config` describes, as the explorer holds it (a tied output
    embedding untied), counted on the `meta` device: no memory, nothing read."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        model = auto.from_config(config, trust_remote_code=False)
        _untie(model)
    return sum(p.numel() for p in model.parameters())


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json",
                   "tokenizer.model")


def resolve(spec: str | Path) -> Path:
    """The folder ``hf:PATH`` names; else ``hf:NAME`` (org/name) already in the local
    Hugging Face cache, looked up with the hub off (an existing path always wins).
    ValueError naming the spec when it is neither: nothing is ever downloaded."""
    text = str(spec)
    name = text[len(PREFIX):] if text.startswith(PREFIX) else text
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"hf: {path} is not a folder")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception as err:  # not a repo id, not cached: say so plainly, one line
        raise ValueError(f"hf: {name} is not a folder, nor a model in the local Hugging "
                         f"Face cache (the explorer never downloads; "
                         f"{type(err).__name__})") from None


def load_tokenizer(spec: str | Path) -> Any | None:
    """The folder's own tokenizer (AutoTokenizer, local files only, no remote code), or
    None when the folder holds none."""
    path = resolve(spec)
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        return None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers

    try:
        return transformers.AutoTokenizer.from_pretrained(
            path, local_files_only=True, trust_remote_code=False)
    except Exception as err:
        raise read_error(f"hf: cannot load the tokenizer in {path}", err) from None


def load_hf(spec: str | Path, image_shape: tuple[int, int, int] | None = None,
            max_params: int | None = None) -> HFModel:
    """Open ``hf:PATH`` (a folder written by ``save_pretrained``); ValueError naming PATH.

    Before any weight is read: config.json is read as data (``auto_map``, custom code, is
    refused), and the model is built on `meta` and counted against `max_params`
    (config.MODEL_PARAMS_MAX by default). transformers never runs the folder's code
    (``trust_remote_code=False``) and so never reads standard input. The weights are then
    read from the memory-mapped file into the meta-built model (transformers' own loader),
    so the load holds about one copy of them.
    """
    path = resolve(spec)
    if not (path / "config.json").is_file():
        raise ValueError(f"hf: {path} holds no config.json, so it is not a Hugging Face model "
                         "folder (write one with model.save_pretrained(PATH))")
    read_config(path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: never reach the hub
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True,
                                                         trust_remote_code=False)
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"hf: cannot read the config in {path}: {err}") from err
    kind = _kind(list(getattr(config, "architectures", None) or []))
    if kind is None:
        raise ValueError(f"hf: {path} holds a {getattr(config, 'architectures', None)} model; "
                         "the explorer opens image classification, sequence classification "
                         "and causal language models")
    auto = {"image": transformers.AutoModelForImageClassification,
            "sequence": transformers.AutoModelForSequenceClassification,
            "causal-lm": transformers.AutoModelForCausalLM}[kind]
    try:
        count = count_on_meta(auto, config)
    except (ValueError, KeyError, TypeError, AttributeError, RuntimeError) as err:
        raise ValueError(f"hf: cannot build the model in {path}: {str(err)[:200]}") from None
    check_params(f"hf: {path}", count, max_params)
    try:
        with no_progress_bars():
            inner = auto.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except Exception as err:  # any load error of its weights (a refused pickle too): one line
        weights = ", ".join(sorted(p.name for p in path.iterdir()
                                   if p.suffix in WEIGHT_SUFFIXES)) or "no weights file"
        raise read_error(f"hf: cannot load the model in {path} ({weights})", err) from None
    inner = inner.float().eval()
    _conv1d_to_linear(inner)
    _untie(inner)
    return HFModel(inner, kind, image_shape)


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """transformers' tqdm bars ("Loading weights", "Writing model shards") off, then as the
    user had them: on stderr, a Voila page shows them above the app for good."""
    import transformers

    bars = transformers.utils.logging
    shown = bars.is_progress_bar_enabled()
    bars.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            bars.enable_progress_bar()


def save_hf(model: HFModel, path: Path, tokenizer: Any | None = None) -> None:
    """Write `model` (its weights as they are: pruned entries zero) as a `save_pretrained`
    folder, with `tokenizer` beside it, that transformers and ``hf:PATH`` open.

    The loaded model had GPT-2's Conv1D swapped for nn.Linear and its embeddings untied
    (load_hf); the folder is written from a model of the config's own classes (Conv1D
    weights transposed back), and the config says the embeddings are untied."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers
    from transformers.pytorch_utils import Conv1D

    auto = {"image": transformers.AutoModelForImageClassification,
            "sequence": transformers.AutoModelForSequenceClassification,
            "causal-lm": transformers.AutoModelForCausalLM}[model.kind]
    fresh = auto.from_config(model.inner.config, trust_remote_code=False)
    conv = {f"{n}.weight" for n, m in fresh.named_modules() if isinstance(m, Conv1D)}
    state = {k: (v.t() if k in conv else v).detach().clone().contiguous()
             for k, v in model.inner.state_dict().items()}
    fresh.load_state_dict(state)
    with no_progress_bars():
        fresh.save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)


def describe(model: HFModel) -> dict:
    """What rebuilds `model` without its folder (a saved session holds it): the kind, the
    image shape and the transformers config as plain data."""
    cfg: Any = model.inner.config
    return {"kind": model.kind, "config": cfg.to_dict(),
            "image_shape": None if model.image_shape is None else list(model.image_shape)}


def from_description(desc: dict) -> HFModel:
    """An untrained HFModel of the architecture `describe` wrote (the weights come from the
    caller). Only a model type transformers knows is built; no remote code is ever run.
    ValueError naming what is wrong."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers

    config = dict(desc["config"])
    kind = desc["kind"]
    if kind not in KINDS:
        raise ValueError(f"hf kind must be one of {', '.join(KINDS)}; got {str(kind)[:40]!r}")
    model_type = config.pop("model_type", None)
    if not isinstance(model_type, str):
        raise ValueError("hf config lacks its model_type")
    for key in ("auto_map", "trust_remote_code"):
        config.pop(key, None)  # code from elsewhere is never asked for
    try:
        cfg = transformers.AutoConfig.for_model(model_type, **config)
        auto = {"image": transformers.AutoModelForImageClassification,
                "sequence": transformers.AutoModelForSequenceClassification,
                "causal-lm": transformers.AutoModelForCausalLM}[kind]
        inner = auto.from_config(cfg, trust_remote_code=False)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"hf config of type {model_type[:40]!r} cannot be built: "
                         f"{str(err)[:160]}") from None
    inner = inner.float().eval()
    _conv1d_to_linear(inner)
    _untie(inner)
    shape = desc.get("image_shape")
    if shape is not None:
        c, h, w = (int(v) for v in shape)  # ValueError unless exactly three sizes
        return HFModel(inner, kind, (c, h, w))
    return HFModel(inner, kind)
