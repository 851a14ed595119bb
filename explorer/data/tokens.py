"""A corpus tokenised with a model's own tokenizer (a Hugging Face tokenizer on disk).

The character corpus keeps its split by topic; each split's text is decoded back from
characters (lossless: the character vocabulary holds every character of the text) and
tokenised as one stream. Perplexity is then per token of that tokenizer; bits per
character, `loss / ln 2 * tokens / characters` of the split, compares models whose
tokenizers differ (a token covers several characters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from .text import TextCorpus, Vocab


@dataclass(frozen=True)
class TokenVocab(Vocab):
    """A tokenizer seen through the Vocab interface (ids <-> text); `chars` is empty."""

    tokenizer: Any = field(default=None, compare=False)
    size: int = 0

    def __len__(self) -> int:
        return self.size

    def encode(self, text: str, device: torch.device | str = "cpu") -> torch.Tensor:
        ids = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        return torch.tensor(ids, dtype=torch.long, device=device)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        values = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return str(self.tokenizer.decode(values))


@dataclass(frozen=True)
class TokenizedCorpus(TextCorpus):
    """A TextCorpus of token ids, with how many characters each split's tokens cover."""

    characters: dict[str, int] = field(default_factory=dict)
    char_vocab: Vocab | None = None  # the character corpus's (what a saved session keeps)

    def chars_per_token(self, split: str) -> float:
        return self.characters[split] / max(len(self.split(split)), 1)

    def bits_per_char(self, loss: float, split: str = "val") -> float:
        """Mean per-token cross-entropy (nats) as bits per character of the split."""
        return loss / math.log(2) / self.chars_per_token(split)


def tokenize_corpus(corpus: TextCorpus, tokenizer: Any, context: int | None = None
                    ) -> TokenizedCorpus:
    """`corpus` re-encoded with `tokenizer` (its splits kept); context in tokens."""
    size = len(tokenizer)
    vocab = TokenVocab("", tokenizer, size)
    streams, chars = {}, {}
    for split in ("train", "val", "test"):
        text = corpus.vocab.decode(corpus.split(split).cpu())
        streams[split] = vocab.encode(text, corpus.split(split).device)
        chars[split] = len(text)
        if len(streams[split]) <= (context or corpus.context) + 1:
            raise ValueError(f"{corpus.name}: the {split} split is {len(streams[split])} "
                             f"tokens, too short for a context of {context or corpus.context}")
    return TokenizedCorpus(corpus.name, vocab, context or corpus.context, streams["train"],
                           streams["val"], streams["test"], corpus.topics, characters=chars,
                           char_vocab=corpus.vocab)
