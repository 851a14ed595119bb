"""Pruning `gpt-tiny`: magnitude masks on its Linear weights, and whole heads / neurons.

Unstructured pruning reuses the image track's mask maths (prune.MagnitudeIndex and
compute_masks) on a dict of the GPT's Linear weights. Structured pruning ranks heads by
the norm of their slice of the attention output projection (or by how much the loss
rises when the head alone is masked) and removes them physically.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..config import PruneConfig, check_choice, check_number
from ..models.gpt import GPT
from .prune import MagnitudeIndex, MaskResult, apply_masks, compute_masks, prunable_names

EMBEDDINGS = ("tok_emb.weight", "pos_emb.weight")
HEAD_RANKINGS = ("l1", "l2", "loss")
NEURON_SIDES = ("in", "out")


def gpt_prunable_names(model: GPT, include_embeddings: bool = False) -> list[str]:
    """Every Linear weight (q, k, v, out, fc, proj of each block), optionally embeddings.

    The output head is tied to tok_emb, so pruning the embedding prunes the head too.
    """
    names = prunable_names(model)
    return names + list(EMBEDDINGS) if include_embeddings else names


def magnitude_prune(model: GPT, config: PruneConfig, include_embeddings: bool = False,
                    base: dict[str, torch.Tensor] | None = None) -> MaskResult:
    """Mask the smallest weights in place, from `base` (default: the current weights).

    Passing the dense base each time rebuilds masks from it, as the Session does, so a
    lower sparsity afterwards restores the base exactly.
    """
    params = dict(model.named_parameters())
    names = gpt_prunable_names(model, include_embeddings)
    weights = {n: (base[n] if base is not None else params[n].detach().clone()) for n in names}
    result = compute_masks(MagnitudeIndex(weights), config)
    apply_masks({n: params[n] for n in names}, weights, result.masks)
    return result


def head_norm_scores(model: GPT, p: int = 1) -> list[torch.Tensor]:
    """Per block, the Lp norm of each head's columns of the output projection."""
    scores = []
    for block in model.blocks:
        attn = block.attn
        w = attn.out.weight.detach()  # (d_model, heads * head_dim)
        per_head = w.view(w.shape[0], attn.n_heads, attn.head_dim)
        scores.append(per_head.norm(p=p, dim=(0, 2)) if attn.n_heads else w.new_zeros(0))
    return scores


@torch.no_grad()
def head_loss_scores(model: GPT, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Per block, the validation-loss increase when that head alone is masked."""
    was_training = model.training
    model.eval()

    def loss() -> float:
        return float(F.cross_entropy(model(x).flatten(0, 1), y.flatten()))

    base = loss()
    scores = []
    for block in model.blocks:
        mask = block.attn.head_mask
        row = torch.zeros(mask.numel())
        for h in range(mask.numel()):
            if mask[h] == 0:  # already masked: removing it changes nothing
                continue
            mask[h] = 0.0
            row[h] = loss() - base
            mask[h] = 1.0
        scores.append(row)
    model.train(was_training)
    return scores


def head_scores(model: GPT, ranking: str = "l1", batch: tuple | None = None
                ) -> list[torch.Tensor]:
    """Importance of every head (higher = more important) by the named ranking."""
    check_choice("head ranking", ranking, HEAD_RANKINGS)
    if ranking == "loss":
        if batch is None:
            raise ValueError("head ranking 'loss' needs a validation batch (x, y)")
        return head_loss_scores(model, *batch)
    return head_norm_scores(model, p=1 if ranking == "l1" else 2)


def normalised_scores(scores: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each block's head scores divided by their L2 norm (an all-zero block stays zero)."""
    out = []
    for s in scores:
        s = s.detach().float()
        norm = float(s.norm()) if s.numel() else 0.0
        out.append(s / norm if norm > 0 else s.clone())
    return out


def plan_head_removal(scores: list[torch.Tensor], fraction: float, scope: str = "global",
                      min_heads: int = 1) -> dict[int, list[int]]:
    """Which heads to drop: the lowest-scored round(fraction * n) overall or per block.

    Every block keeps at least `min_heads` heads (a block without heads still works,
    but the user should ask for that explicitly with min_heads=0). Global scope compares
    blocks whose raw scores live on different scales (output-projection norms grow or
    shrink with depth), so each block's scores are first divided by their L2 norm over
    the block, as Michel et al. 2019 ("Are Sixteen Heads Really Better than One?") do
    before ranking heads across layers (`normalised_scores`).
    """
    check_number("head fraction", fraction, 0.0, 1.0)
    check_choice("scope", scope, ("global", "layer"))
    plan: dict[int, list[int]] = {i: [] for i in range(len(scores))}
    if scope == "layer":
        for i, s in enumerate(scores):
            k = min(round(fraction * s.numel()), max(0, s.numel() - min_heads))
            plan[i] = sorted(torch.argsort(s, stable=True)[:k].tolist())
        return plan
    flat = [(float(s[h]), i, h) for i, s in enumerate(normalised_scores(scores))
            for h in range(s.numel())]
    k = round(fraction * len(flat))
    left = {i: s.numel() for i, s in enumerate(scores)}
    for _, i, h in sorted(flat):
        if k == 0:
            break
        if left[i] > min_heads:
            plan[i].append(h)
            left[i] -= 1
            k -= 1
    return {i: sorted(hs) for i, hs in plan.items()}


def mask_heads(model: GPT, plan: dict[int, list[int]]) -> None:
    """Mask (not remove) heads: head_mask = 0, shapes unchanged."""
    with torch.no_grad():
        for i, heads in plan.items():
            for h in heads:
                model.blocks[i].attn.head_mask[h] = 0.0


def remove_heads(model: GPT, plan: dict[int, list[int]]) -> None:
    """Physically remove the planned heads of every block."""
    for i, heads in plan.items():
        if heads:
            model.remove_heads(i, heads)


def neuron_scores(model: GPT, p: int = 1, side: str = "in") -> list[torch.Tensor]:
    """Per block, the Lp norm of each MLP neuron's fc row (in) or proj column (out)."""
    check_choice("neuron side", side, NEURON_SIDES)
    return [(b.mlp.fc.weight.detach().norm(p=p, dim=1) if side == "in"
             else b.mlp.proj.weight.detach().norm(p=p, dim=0)) for b in model.blocks]


def remove_neurons(model: GPT, fraction: float, p: int = 1, side: str = "in") -> dict:
    """Remove the lowest-norm round(fraction * hidden) MLP neurons of every block."""
    check_number("neuron fraction", fraction, 0.0, 1.0)
    plan = {}
    for i, s in enumerate(neuron_scores(model, p, side)):
        k = round(fraction * s.numel())
        plan[i] = sorted(torch.argsort(s, stable=True)[:k].tolist())
        if plan[i]:
            model.remove_neurons(i, plan[i])
    return plan


def layer_sparsity(model: GPT, include_embeddings: bool = False) -> list[dict]:
    """Per prunable weight: numel, nonzero and sparsity (zeros / numel)."""
    params = dict(model.named_parameters())
    out = []
    for name in gpt_prunable_names(model, include_embeddings):
        w = params[name]
        nonzero = int(torch.count_nonzero(w))
        out.append({"name": name, "numel": w.numel(), "nonzero": nonzero,
                    "sparsity": 1.0 - nonzero / w.numel() if w.numel() else math.nan})
    return out


def head_sparsity(model: GPT) -> list[list[float]]:
    """Layers x original heads: the pruned fraction of each head's q/k/v rows and out
    columns. A removed or masked head is 1.0, so a heatmap shows it dark."""
    grid = []
    n_orig = model.config.n_heads
    for block in model.blocks:
        attn = block.attn
        row = [1.0] * n_orig
        h, hd = attn.n_heads, attn.head_dim
        if h:  # one pass per projection (a count per head slice cost 10x more on 10M)
            nonzero = sum(getattr(attn, n).weight.ne(0).view(h, -1).sum(1)
                          for n in ("q", "k", "v"))
            nonzero = nonzero + attn.out.weight.ne(0).view(-1, h, hd).sum((0, 2))
            numel = 3 * hd * attn.q.weight.shape[1] + hd * attn.out.weight.shape[0]
            live = (attn.head_mask != 0).tolist()
            for pos, (orig, count) in enumerate(zip(attn.head_ids.tolist(),
                                                    nonzero.tolist())):
                if live[pos]:
                    row[orig] = 1.0 - count / numel
        grid.append(row)
    return grid
