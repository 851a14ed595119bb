"""Writing a pruned model as a standard PyTorch state, and reading it back.

Three kinds, all loadable with torch.load(path, weights_only=True) (plain tensors, dicts,
lists, ints and strings; never pickled code):
- masked: `<name>_orig` and `<name>_mask` exactly as torch.nn.utils.prune writes them
  (made by prune.custom_from_mask on a copy, so the keys and dtypes are torch's own);
- zeros: plain weights with the pruned entries set to zero;
- shrunk: the physically smaller model's state plus its architecture description;
  an `hf:` model's description is its transformers config (models.hf.describe), and
  `load_exported` shrinks the rebuilt model to the state's shapes through the same graph;
- semi_structured: zeros, checked 2:4 (at most 2 nonzeros in every 4 consecutive inputs of
  every row) for each masked Linear, listed under "semi_structured": the weights that
  `torch.sparse.to_sparse_semi_structured` accepts (a CUDA GPU of capability 8.0 or
  newer, fp16/bf16: see `to_semi_structured`; on CPU there is nothing to accelerate).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from ..config import EXPORT_KINDS, check_choice
from ..files import atomic_file, read_error
from ..models.hf import HFModel, describe
from ..models.zoo import model_arch
from .structure import shrink_model

EXPORT_FORMAT = 1
HF_ARCH = "hf"  # arch["name"] of an hf: model: arch["hf"] is its models.hf.describe()


def _split(name: str) -> tuple[str, str]:
    module, _, param = name.rpartition(".")
    return module, param


def masked_state(model: nn.Module, base: dict[str, torch.Tensor],
                 masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state torch.nn.utils.prune would hold: `_orig` = dense base, `_mask` = float mask."""
    clone = copy.deepcopy(model)
    for name, mask in masks.items():
        module_name, param = _split(name)
        module = clone.get_submodule(module_name)
        with torch.no_grad():
            getattr(module, param).copy_(base[name])
        torch_prune.custom_from_mask(module, param, mask)
    return clone.state_dict()


def export_model(path: str | Path, model: nn.Module, kind: str,
                 base: dict[str, torch.Tensor] | None = None,
                 masks: dict[str, torch.Tensor] | None = None) -> dict:
    """Write `model` (already masked) as `kind`; return the payload written."""
    check_choice("kind", kind, EXPORT_KINDS)
    arch = export_arch(model)
    if kind == "shrunk":
        small = shrink_model(model)  # raises ValueError naming the layer when unsafe
        # an hf: model keeps its dense config: the load shrinks to the state's shapes
        state, arch = small.state_dict(), model_arch(small) or arch
    elif kind == "semi_structured":
        state = model.state_dict()
        names = [n for n in (masks or {}) if state[n].ndim == 2]
        for name in names:
            check_two_four(name, state[name])
    elif kind == "masked" and masks:
        state = masked_state(model, base if base is not None else model.state_dict(), masks)
    else:
        state = model.state_dict()
    payload = {"format": EXPORT_FORMAT, "kind": kind, "arch": arch,
               "state_dict": {k: v.detach().cpu().clone() for k, v in state.items()}}
    if kind == "semi_structured":
        payload["semi_structured"] = names
    with atomic_file(path) as handle:  # a failed write leaves the old file as it was
        torch.save(payload, handle)
    return payload


def export_arch(model: nn.Module) -> dict | None:
    """What rebuilds `model` from the file alone: a zoo model's `arch()`, an hf: model's
    transformers config; None for any other module (its loader passes `model=`)."""
    if isinstance(model, HFModel):
        return {"name": HF_ARCH, "hf": describe(model)}
    return model_arch(model)


def check_two_four(name: str, weight: torch.Tensor) -> None:
    """ValueError naming the layer unless every 4 consecutive inputs of a row hold at most
    2 nonzeros (prune with pattern="2:4" first)."""
    rows, cols = weight.shape
    if cols % 4:
        raise ValueError(f"{name}: {cols} inputs are not a multiple of 4 (2:4 needs groups)")
    per_group = (weight.reshape(rows, cols // 4, 4) != 0).sum(-1)
    if bool((per_group > 2).any()):
        raise ValueError(f"{name}: not 2:4 sparse ({int((per_group > 2).sum())} groups of 4 "
                         "hold more than 2 nonzeros); prune with pattern='2:4' first")


def to_semi_structured(weight: torch.Tensor) -> torch.Tensor:
    """A 2:4 weight as torch's semi-structured sparse tensor (fp16, on a CUDA GPU)."""
    if not torch.cuda.is_available():
        raise ValueError("to_sparse_semi_structured needs a CUDA GPU of compute capability "
                         "8.0 or newer; on CPU there is no 2:4 speedup to measure")
    from torch.sparse import to_sparse_semi_structured

    return to_sparse_semi_structured(weight.detach().to("cuda", torch.float16))


def load_exported(path: str | Path, model: nn.Module | None = None,
                  keep_masks: bool = False) -> nn.Module:
    """Rebuild an exported model (eval mode) from the file alone, or load into `model`.

    Zoo and hf: models carry their architecture (an hf: model's transformers config; a
    shrunk one is rebuilt dense, then shrunk to the file's shapes), and so does a
    language model's shrunk export (its GPT config); a bring-your-own model needs `model`
    given (a fresh instance of the same class). A masked file is loaded through
    torch.nn.utils.prune's own slots; unless `keep_masks`, the masks are then folded in
    (prune.remove), giving a plain module. Kept masks mean forward pre-hooks, and torch
    cannot deepcopy such a module after a forward pass that records gradients.
    """

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickled code, truncated, not a torch file: name the file
        raise read_error(f"exported model {path}", err) from None
    state = payload["state_dict"]
    if model is None:
        model = _model_for(path, payload)
    for key in state:
        # recreate the pruning reparametrisation slots (a GPT's head_mask is no such slot)
        if key.endswith("_mask") and f"{key[:-len('_mask')]}_orig" in state:
            module_name, param = _split(key[: -len("_mask")])
            torch_prune.identity(model.get_submodule(module_name), param)
    model.load_state_dict(state)
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, torch_prune.BasePruningMethod):
                if keep_masks:  # recompute weight = orig * mask as a leaf (deepcopy-able)
                    with torch.no_grad():
                        setattr(module, hook._tensor_name, hook.apply_mask(module))
                else:
                    torch_prune.remove(module, hook._tensor_name)
    return model.eval()


def _model_for(path: str | Path, payload: dict) -> nn.Module:
    """The module an export's state loads into, built from the file's description."""
    from ..models.zoo import build_from_arch

    if "gpt_config" in payload:  # a language model's shrunk export (session.language)
        from ..models.gpt import GPTConfig, gpt_from_state_dict

        return gpt_from_state_dict(GPTConfig(**payload["gpt_config"]), payload["state_dict"])
    arch = payload.get("arch")
    if arch is None:
        raise ValueError(f"{path}: no architecture stored; pass model= to load it into")
    if arch.get("name") != HF_ARCH:
        return build_from_arch(arch)
    from ..models.hf import from_description

    with torch.random.fork_rng(devices=[]):  # the weights come from the file
        model = from_description(arch["hf"])
    return shrunk_to(model, payload["state_dict"])


@torch.no_grad()
def shrunk_to(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """`model` physically shrunk so that its tensors take `state`'s shapes (the same
    model itself when they already do): each structured group loses as many channels
    (heads) as the state lacks, its last ones, through the graph the export shrank with.
    Which ones does not matter: the weights then come from `state`, in order."""
    from .attention import graph_of, graph_shrink

    own = model.state_dict()
    if all(k not in own or own[k].shape == v.shape for k, v in state.items()):
        return model
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    for group in graph_of(model)[0]:
        member = next((m for m in group.members if m.rank and m.param in state), None)
        if member is None:
            continue
        removed = tensors[member.param].shape[member.dim] - state[member.param].shape[member.dim]
        dead = removed // max(len(member.idx) // group.size, 1)
        if dead <= 0:
            continue
        for m in group.members:
            doomed = m.idx[m.root >= group.size - dead]
            tensors[m.param].index_fill_(m.dim, doomed.to(tensors[m.param].device), 0.0)
    return graph_shrink(model)
