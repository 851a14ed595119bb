"""Writing a pruned model as a standard PyTorch state, and reading it back.

Three kinds, all loadable with torch.load(path, weights_only=True) (plain tensors, dicts,
lists, ints and strings; never pickled code):
- masked: `<name>_orig` and `<name>_mask` exactly as torch.nn.utils.prune writes them
  (made by prune.custom_from_mask on a copy, so the keys and dtypes are torch's own);
- zeros: plain weights with the pruned entries set to zero;
- shrunk: the physically smaller model's state plus its architecture description;
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
from ..models.zoo import model_arch
from .structure import shrink_model

EXPORT_FORMAT = 1


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
    arch = model_arch(model)
    if kind == "shrunk":
        small = shrink_model(model)  # raises ValueError naming the layer when unsafe
        state, arch = small.state_dict(), model_arch(small)
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

    Zoo models carry their architecture; a bring-your-own model needs `model` given
    (a fresh instance of the same class). A masked file is loaded through
    torch.nn.utils.prune's own slots; unless `keep_masks`, the masks are then folded in
    (prune.remove), giving a plain module. Kept masks mean forward pre-hooks, and torch
    cannot deepcopy such a module after a forward pass that records gradients.
    """
    from ..models.zoo import build_from_arch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickled code, truncated, not a torch file: name the file
        raise read_error(f"exported model {path}", err) from None
    if model is None:
        if payload.get("arch") is None:
            raise ValueError(f"{path}: no architecture stored; pass model= to load it into")
        model = build_from_arch(payload["arch"])
    state = payload["state_dict"]
    for key in state:
        if key.endswith("_mask"):  # recreate the pruning reparametrisation slots
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
