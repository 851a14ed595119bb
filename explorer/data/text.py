"""Character-level text corpora for the language-model track, all offline.

The built-in corpus `pydoc-text` is CPython's own help text (`pydoc_data.topics`, 79
topics, about 465,000 characters). It is split BY TOPIC, so validation text comes from
help pages the model never saw (a split by position would leak a topic's phrasing into
both halves). A user's text file has no topics: it is cut into equal contiguous chunks,
which are then split the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import TEXT_BYTES_MAX, TEXT_DATASETS

UNKNOWN_CHAR = "\ufffd"  # stands for characters outside the vocabulary (e.g. in prompts)
DEFAULT_CONTEXT = 64
VAL_FRACTION = 0.10  # of the characters, rounded to whole topics
TEST_FRACTION = 0.05
FILE_CHUNKS = 40  # a user file is cut into this many "topics" before splitting


@dataclass(frozen=True)
class Vocab:
    """Characters <-> ids; id 0 is the unknown character."""

    chars: str  # chars[i] is the character of id i; chars[0] == UNKNOWN_CHAR

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls(UNKNOWN_CHAR + "".join(sorted(set(text) - {UNKNOWN_CHAR})))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def _index(self) -> dict[str, int]:
        # Rebuilt per call on purpose: a frozen dataclass keeps no cache; the dict is tiny.
        return {c: i for i, c in enumerate(self.chars)}

    def encode(self, text: str, device: torch.device | str = "cpu") -> torch.Tensor:
        index = self._index
        return torch.tensor([index.get(c, 0) for c in text], dtype=torch.long, device=device)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        values = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return "".join(self.chars[i] for i in values)


@dataclass(frozen=True)
class TextCorpus:
    """Encoded train / validation / test streams on one device, plus the vocabulary."""

    name: str
    vocab: Vocab
    context: int
    train: torch.Tensor  # 1-D LongTensor of character ids
    val: torch.Tensor
    test: torch.Tensor
    topics: dict[str, tuple[str, ...]]  # split -> the topic (or chunk) names in it

    def split(self, name: str) -> torch.Tensor:
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test; got {name!r}")
        return getattr(self, name)

    def get_batch(self, split: str, batch_size: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows (x, y), y shifted by one character, built on the data's device.

        Window starts are drawn from a CPU generator, so a seed gives the same batches on
        every device; the gather itself happens where the data lives.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        data = self.split(split)
        starts = torch.randint(len(data) - self.context, (batch_size,), generator=generator)
        offsets = torch.arange(self.context + 1)
        idx = (starts[:, None] + offsets[None, :]).to(data.device)
        windows = data[idx]
        return windows[:, :-1], windows[:, 1:]

    def windows(self, split: str, max_windows: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Non-overlapping windows covering the split in order (deterministic evaluation).

        With `max_windows`, evenly spaced windows are kept so the whole split is sampled.
        """
        data = self.split(split)
        n = (len(data) - 1) // self.context
        starts = torch.arange(n) * self.context
        if max_windows is not None and n > max_windows:
            starts = starts[torch.linspace(0, n - 1, max_windows).round().long()]
        idx = (starts[:, None] + torch.arange(self.context + 1)[None, :]).to(data.device)
        windows = data[idx]
        return windows[:, :-1], windows[:, 1:]

@dataclass(frozen=True)
class RandomWindows:
    """A corpus split as training data for the one training loop: each batch is windows
    starting at random offsets (an "epoch" is as many windows as fit end to end)."""

    corpus: TextCorpus
    split: str = "train"

    def __len__(self) -> int:
        return max(1, (len(self.corpus.split(self.split)) - 1) // self.corpus.context)

    def draw(self, batch_size: int, generator: torch.Generator
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x, y, index); index numbers the windows within the batch (no cache needs it)."""
        x, y = self.corpus.get_batch(self.split, batch_size, generator)
        return x, y, torch.arange(len(x), device=x.device)



def _split_documents(docs: dict[str, str], seed: int, val_fraction: float,
                     test_fraction: float) -> dict[str, list[str]]:
    """Seeded shuffle of whole documents; test then validation fill up to their share."""
    names = sorted(docs)
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed))
    total = sum(len(t) for t in docs.values())
    out: dict[str, list[str]] = {"test": [], "val": [], "train": []}
    filled = {"test": 0, "val": 0}
    targets = {"test": test_fraction * total, "val": val_fraction * total}
    for i in order.tolist():
        name = names[i]
        # Fill test, then validation, to their character share; the rest trains.
        split = next((s for s in ("test", "val") if filled[s] < targets[s]), "train")
        out[split].append(name)
        if split != "train":
            filled[split] += len(docs[name])
    return out


def corpus_from_documents(name: str, docs: dict[str, str], context: int = DEFAULT_CONTEXT,
                          seed: int = 0, device: torch.device | str = "cpu",
                          val_fraction: float = VAL_FRACTION,
                          test_fraction: float = TEST_FRACTION) -> TextCorpus:
    """Split named documents by document, build the vocabulary and encode each split."""
    if isinstance(context, bool) or not isinstance(context, int) or context < 1:
        raise ValueError(f"context must be a positive whole number, got {context!r}")
    text = "".join(docs.values())
    if not text.strip():
        raise ValueError(f"text of {name!r} is empty")
    if len(docs) < 3:
        raise ValueError(f"{name!r} needs at least 3 documents to split, got {len(docs)}")
    vocab = Vocab.from_text(text)
    names = _split_documents(docs, seed, val_fraction, test_fraction)
    streams = {}
    for split, members in names.items():
        joined = "\n\n".join(docs[m] for m in sorted(members))
        if len(joined) < context + 1:
            raise ValueError(
                f"the {split} split of {name!r} has {len(joined)} characters; it needs at "
                f"least context + 1 = {context + 1}: use more text or a shorter context")
        streams[split] = vocab.encode(joined, device)
    return TextCorpus(name, vocab, context, streams["train"], streams["val"], streams["test"],
                      {s: tuple(sorted(m)) for s, m in names.items()})


def load_pydoc_text(context: int = DEFAULT_CONTEXT, seed: int = 0,
                    device: torch.device | str = "cpu") -> TextCorpus:
    """The built-in corpus: CPython's help topics, split by topic."""
    from pydoc_data.topics import topics

    return corpus_from_documents("pydoc-text", dict(topics), context, seed, device)


def load_text_file(path: str | Path, context: int = DEFAULT_CONTEXT, seed: int = 0,
                   device: torch.device | str = "cpu", chunks: int = FILE_CHUNKS,
                   encoding: str = "utf-8") -> TextCorpus:
    """A user's own text file, cut into `chunks` contiguous pieces split like topics."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"text file {str(path)!r} does not exist")
    try:
        size = path.stat().st_size  # before reading: a huge corpus costs minutes and GiBs
        if size > TEXT_BYTES_MAX:
            raise ValueError(f"text file {str(path)!r} is {size / 2**20:.1f} MiB, past the "
                             f"cap of {TEXT_BYTES_MAX / 2**20:g} MiB (config.TEXT_BYTES_MAX) "
                             "for a character-level corpus; use a part of it")
        with path.open("rb") as fh:  # bounded: the file may grow meanwhile
            raw = fh.read(TEXT_BYTES_MAX + 1)
        if len(raw) > TEXT_BYTES_MAX:
            raise ValueError(f"text file {str(path)!r} grew past the cap of "
                             f"{TEXT_BYTES_MAX / 2**20:g} MiB while it was read")
        # newlines as read_text gives them (universal newlines)
        text = raw.decode(encoding).replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as err:  # name the file and where: the bare error says neither
        raise ValueError(f"text file {str(path)!r} is not {encoding} text: byte "
                         f"{err.object[err.start:err.start + 1]!r} at offset {err.start} "
                         f"cannot be decoded ({err.reason}); save it as {encoding}") from None
    except OSError as err:
        raise ValueError(f"text file {str(path)!r} cannot be read ({err.strerror})") from None
    if not text.strip():
        raise ValueError(f"text file {str(path)!r} is empty")
    if len(text) < 3 * (context + 1):
        raise ValueError(f"text file {str(path)!r} has {len(text)} characters; context "
                         f"{context} needs at least {3 * (context + 1)}")
    chunks = max(3, min(chunks, len(text) // (context + 1)))
    bounds = [round(i * len(text) / chunks) for i in range(chunks + 1)]
    docs = {f"chunk-{i:03d}": text[a:b] for i, (a, b) in enumerate(zip(bounds, bounds[1:]))}
    return corpus_from_documents(path.name, docs, context, seed, device)


def load_text(name: str, context: int = DEFAULT_CONTEXT, seed: int = 0,
              device: torch.device | str = "cpu") -> TextCorpus:
    """A built-in corpus by name (only `pydoc-text` for now)."""
    if name != "pydoc-text":
        raise ValueError(f"text dataset must be one of {', '.join(TEXT_DATASETS)}; "
                         f"got {name!r}")
    return load_pydoc_text(context, seed, device)


def unigram_perplexity(corpus: TextCorpus, split: str = "val") -> float:
    """The baseline a model must beat: exp(cross-entropy) of train char frequencies.

    Add-one smoothing, so a character unseen in train has a finite cost.
    """
    counts = torch.bincount(corpus.train.cpu(), minlength=len(corpus.vocab)).double() + 1.0
    log_p = torch.log(counts / counts.sum())
    # Score the same targets evaluate_lm scores: the characters after the first one.
    targets = corpus.split(split).cpu()[1:]
    return float(torch.exp(-log_p[targets].mean()))
