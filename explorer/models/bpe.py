"""A byte-level BPE tokenizer trained here with `tokenizers` (nothing downloaded).

Used to give the small GPT of `explorer reproduce llm-pruning` (scripts/train_small_gpt.py)
and the tests' GPT-2 / Llama / Qwen2 folders a tokenizer of their own, saved beside the
model so that ``hf:PATH`` opens both (transformers' AutoTokenizer reads tokenizer.json).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

EOS = "<|endoftext|>"


def train_bpe(texts: Iterable[str], vocab_size: int = 512) -> Any:
    """A PreTrainedTokenizerFast with byte-level BPE trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS,
                                   unk_token=EOS, model_max_length=1 << 30)
