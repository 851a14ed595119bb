"""Train the small BPE GPT that `explorer reproduce llm-pruning` prunes (`make llm-gpt`).

A GPT-2-architecture model (transformers' GPT2LMHeadModel, built from a config) with a
byte-level BPE tokenizer trained here on the training split of pydoc-text, trained with
AdamW for a wall-clock budget, saved with save_pretrained (model and tokenizer) so that
``hf:OUT`` opens both. Nothing is downloaded. Seeded (seed 0, fixed thread count).

    nice -n 10 python scripts/train_small_gpt.py --out build/llm-gpt --minutes 9
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from explorer.data.text import load_pydoc_text  # noqa: E402
from explorer.models.bpe import train_bpe  # noqa: E402

CONTEXT = 64


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("build/llm-gpt"))
    p.add_argument("--minutes", type=float, default=8.0)
    p.add_argument("--vocab", type=int, default=1024)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    # One thread: on a shared 2-core machine two OpenMP threads wait on each other whenever
    # either is descheduled; measured at load average ~12, 3.3 steps/s with one thread and
    # 0.17 with two (the 131 steps of a 9-minute `make llm-gpt`).
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    import transformers as T

    chars = load_pydoc_text(context=CONTEXT, seed=0)
    text = chars.vocab.decode(chars.train)
    tok = train_bpe([text[i:i + 4000] for i in range(0, len(text), 4000)], args.vocab)
    ids = torch.tensor(tok(text, add_special_tokens=False)["input_ids"])
    val_text = chars.vocab.decode(chars.val)
    val = torch.tensor(tok(val_text, add_special_tokens=False)["input_ids"])
    cfg = T.GPT2Config(vocab_size=len(tok), n_embd=args.width, n_layer=args.layers,
                       n_head=args.width // 64 * 2 or 1, n_positions=CONTEXT,
                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                       bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    model = T.GPT2LMHeadModel(cfg)
    n = sum(q.numel() for q in model.parameters())
    print(f"{n / 1e6:.2f}M parameters; {len(ids)} train tokens "
          f"({len(text) / len(ids):.2f} chars/token)", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    gen = torch.Generator().manual_seed(0)
    budget, start, step = args.minutes * 60, time.monotonic(), 0
    model.train()
    while time.monotonic() - start < budget:
        frac = (time.monotonic() - start) / budget
        for group in opt.param_groups:  # linear warm-up, cosine decay over the budget
            group["lr"] = 3e-3 * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(
                math.pi * frac))
        starts = torch.randint(len(ids) - CONTEXT - 1, (args.batch,), generator=gen)
        x = torch.stack([ids[s:s + CONTEXT] for s in starts])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 25 == 0:
            print(f"step {step} loss {loss.item():.3f} "
                  f"({time.monotonic() - start:.0f} s)", flush=True)
    model.eval()
    with torch.no_grad():
        w = val[: (len(val) - 1) // CONTEXT * CONTEXT].view(-1, CONTEXT)[:128]
        vloss = float(model(input_ids=w, labels=w).loss)
    print(f"{step} steps in {time.monotonic() - start:.0f} s; val perplexity "
          f"{math.exp(vloss):.1f} per token", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tok.save_pretrained(args.out)
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
