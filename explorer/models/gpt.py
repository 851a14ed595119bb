"""`gpt-tiny`: a small decoder-only transformer built from torch.nn pieces.

Attention is written out with explicit q / k / v / out Linear projections (not
nn.MultiheadAttention or scaled_dot_product_attention) so that a learner can see each
head, and so that heads can be masked (a per-block head_mask buffer, 1 = keep) or
physically removed (rows of q, k, v and columns of the output projection). MLP neurons
work the same way (rows of fc, columns of proj). Layout follows karpathy/nanoGPT:
token + position embeddings, pre-LayerNorm blocks, a final LayerNorm, and an output
head tied to the token embedding (so the head is not a separate Linear to prune).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast, overload

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init

from ..config import check_number

MAX_LAYERS = 24
MAX_HEADS = 32
MAX_D_MODEL = 2048


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of a GPT; every block starts with n_heads heads of d_model // n_heads."""

    vocab_size: int
    context: int  # longest sequence the position embedding covers
    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 128
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio * d_model
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_number("vocab_size", self.vocab_size, 2, 1_000_000, integer=True)
        check_number("context", self.context, 1, 65536, integer=True)
        check_number("n_layers", self.n_layers, 1, MAX_LAYERS, integer=True)
        check_number("n_heads", self.n_heads, 1, MAX_HEADS, integer=True)
        check_number("d_model", self.d_model, 1, MAX_D_MODEL, integer=True)
        check_number("mlp_ratio", self.mlp_ratio, 1, 16, integer=True)
        check_number("dropout", self.dropout, 0.0, 0.9)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads "
                             f"({self.n_heads})")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention over earlier positions only."""

    # Buffers (register_buffer), declared so that type checkers know they are tensors.
    causal: torch.Tensor
    head_mask: torch.Tensor
    head_ids: torch.Tensor

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        d, hd, h = config.d_model, config.head_dim, config.n_heads
        self.head_dim = hd
        self.q = nn.Linear(d, h * hd)
        self.k = nn.Linear(d, h * hd)
        self.v = nn.Linear(d, h * hd)
        self.out = nn.Linear(h * hd, d)
        self.dropout = nn.Dropout(config.dropout)
        causal = torch.tril(torch.ones(config.context, config.context, dtype=torch.bool))
        self.register_buffer("causal", causal, persistent=False)
        self.register_buffer("head_mask", torch.ones(h))
        # Original index of each surviving head, so views can show removed heads as gaps.
        self.register_buffer("head_ids", torch.arange(h))

    @property
    def n_heads(self) -> int:
        return int(self.head_ids.numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h, hd = self.n_heads, self.head_dim
        if h == 0:  # every head removed: the block adds only the output bias
            return self.out.bias.expand(b, t, -1)
        q = self.q(x).view(b, t, h, hd).transpose(1, 2)  # (b, h, t, hd)
        k = self.k(x).view(b, t, h, hd).transpose(1, 2)
        v = self.v(x).view(b, t, h, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = att.masked_fill(~self.causal[:t, :t], float("-inf"))
        att = self.dropout(torch.softmax(att, dim=-1))
        y = att @ v  # (b, h, t, hd)
        y = y * self.head_mask.view(1, h, 1, 1)  # a masked head contributes nothing
        return self.out(y.transpose(1, 2).reshape(b, t, h * hd))

    @torch.no_grad()
    def remove_heads(self, heads: list[int]) -> None:
        """Drop heads (positions among the current ones) by shrinking the projections."""
        drop = set(int(i) for i in heads)
        if not drop <= set(range(self.n_heads)):
            raise ValueError(f"heads {sorted(drop)} out of range 0..{self.n_heads - 1}")
        keep = [i for i in range(self.n_heads) if i not in drop]
        rows = torch.tensor([i * self.head_dim + j for i in keep for j in range(self.head_dim)],
                            dtype=torch.long, device=self.out.weight.device)
        for name in ("q", "k", "v"):
            setattr(self, name, _take_rows(getattr(self, name), rows))
        self.out = _take_cols(self.out, rows)
        index = torch.tensor(keep, dtype=torch.long, device=self.head_mask.device)
        self.head_mask = self.head_mask[index].clone()
        self.head_ids = self.head_ids[index].clone()


class MLPBlock(nn.Module):
    """fc -> GELU -> (neuron mask) -> proj."""

    neuron_mask: torch.Tensor  # buffer, 1 = keep

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        hidden = config.mlp_ratio * config.d_model
        self.fc = nn.Linear(config.d_model, hidden)
        self.proj = nn.Linear(hidden, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        # Masking the activation (not the fc row) is what removal does: a zeroed fc row
        # would still output GELU(bias) into proj.
        self.register_buffer("neuron_mask", torch.ones(hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x)) * self.neuron_mask))

    @torch.no_grad()
    def remove_neurons(self, neurons: list[int]) -> None:
        drop = set(int(i) for i in neurons)
        hidden = self.fc.out_features
        if not drop <= set(range(hidden)):
            raise ValueError(f"neurons {sorted(drop)} out of range 0..{hidden - 1}")
        keep = torch.tensor([i for i in range(hidden) if i not in drop], dtype=torch.long,
                            device=self.fc.weight.device)
        self.fc = _take_rows(self.fc, keep)
        self.proj = _take_cols(self.proj, keep)
        self.neuron_mask = self.neuron_mask[keep].clone()


class Block(nn.Module):
    """Pre-LayerNorm residual block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = MLPBlock(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Blocks(nn.ModuleList):
    """An nn.ModuleList of Blocks that says so to type checkers.

    Behaves exactly like nn.ModuleList (same state_dict keys); only the declared types of
    indexing and iteration are narrowed, so `model.blocks[i].attn` type-checks.
    """

    def __iter__(self) -> Iterator[Block]:
        return cast(Iterator[Block], super().__iter__())

    @overload
    def __getitem__(self, idx: slice) -> Blocks: ...

    @overload
    def __getitem__(self, idx: int) -> Block: ...

    def __getitem__(self, idx: int | slice) -> Block | Blocks:
        # nn.ModuleList slices into self.__class__, so a slice is a Blocks too.
        return cast("Block | Blocks", super().__getitem__(idx))


class GPT(nn.Module):
    """Decoder-only character model: ids (B, T) -> next-character logits (B, T, V)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.context, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = Blocks(Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self._init_weights()

    def _init_weights(self) -> None:
        """nanoGPT's scheme: N(0, 0.02), residual projections scaled by 1/sqrt(2 L)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for proj in (block.attn.out, block.mlp.proj):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * self.config.n_layers))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        if t > self.config.context:
            raise ValueError(f"sequence length {t} exceeds the context {self.config.context}")
        pos = torch.arange(t, device=ids.device)
        x = self.drop(self.tok_emb(ids) + self.pos_emb(pos))
        for block in self.blocks:
            x = block(x)
        # Tied head: the output layer reuses the token embedding matrix.
        return F.linear(self.ln_f(x), self.tok_emb.weight)

    def remove_heads(self, block_idx: int, heads: list[int]) -> None:
        """Physically remove heads (current positions) of one block."""
        self._block(block_idx).attn.remove_heads(heads)

    def remove_neurons(self, block_idx: int, neurons: list[int]) -> None:
        """Physically remove MLP hidden neurons (current positions) of one block."""
        self._block(block_idx).mlp.remove_neurons(neurons)

    def _block(self, block_idx: int) -> Block:
        if not 0 <= block_idx < len(self.blocks):
            raise ValueError(f"block_idx must be in 0..{len(self.blocks) - 1}, "
                             f"got {block_idx!r}")
        return self.blocks[block_idx]

    def heads_per_layer(self) -> list[int]:
        return [b.attn.n_heads for b in self.blocks]


def _empty_linear(n_in: int, n_out: int, like: torch.Tensor) -> nn.Linear:
    """An uninitialised Linear (its weights are overwritten at once); removing every head
    or neuron makes a zero-size one, whose default init would only warn."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Initializing zero-element tensors")
        return skip_init(nn.Linear, n_in, n_out, device=like.device, dtype=like.dtype)


def _take_rows(layer: nn.Linear, rows: torch.Tensor) -> nn.Linear:
    """A new Linear with only the given output features."""
    new = _empty_linear(layer.in_features, rows.numel(), layer.weight)
    new.weight.copy_(layer.weight[rows])
    new.bias.copy_(layer.bias[rows])
    return new


def _take_cols(layer: nn.Linear, cols: torch.Tensor) -> nn.Linear:
    """A new Linear with only the given input features (the bias is unchanged)."""
    new = _empty_linear(cols.numel(), layer.out_features, layer.weight)
    new.weight.copy_(layer.weight[:, cols])
    new.bias.copy_(layer.bias)
    return new


def count_params(model: nn.Module) -> tuple[int, int]:
    """(parameters, nonzero parameters); the tied embedding counts once."""
    params = list(model.parameters())  # parameters() already de-duplicates shared tensors
    return (sum(p.numel() for p in params),
            sum(int(torch.count_nonzero(p)) for p in params))


def gpt_from_state_dict(config: GPTConfig, state: dict[str, torch.Tensor]) -> GPT:
    """Rebuild a GPT, shrunk or not, from its config and state_dict.

    A fresh GPT(config) has every head and neuron; removed ones change the shapes, so the
    skeleton is shrunk first (heads from the saved head_ids, neurons by count) and then
    the saved weights are loaded over it.
    """
    model = GPT(config)
    for i, block in enumerate(model.blocks):
        kept = set(state[f"blocks.{i}.attn.head_ids"].tolist())
        block.attn.remove_heads([h for h in range(config.n_heads) if h not in kept])
        hidden = state[f"blocks.{i}.mlp.fc.weight"].shape[0]
        block.mlp.remove_neurons(list(range(hidden, block.mlp.fc.out_features)))
    model.load_state_dict(state)
    return model
