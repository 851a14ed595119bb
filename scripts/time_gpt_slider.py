"""How long the app's handler for one gpt-tiny slider move takes (issue 15 item 3).

Run: PYTHONPATH=. python scripts/time_gpt_slider.py [--moves 8] [--threads 1] [--compare-inline]

Headless: the time from setting the slider's value to the handler's return (prune,
evaluate, figures, headline, cards, sample line), which is the kernel's share of the
browser's Enter-to-draw. The text sample used to be generated inside that handler;
it now follows in the background once the slider settles, and is timed on its own.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from explorer import Session
from explorer.ui import ExplorerApp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--compare-inline", action="store_true",
                        help="every other move with the sample generated inline (the old path)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    app = ExplorerApp(Session("pydoc-text", "gpt-tiny", device="cpu"))
    app.curve.wait(300)
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(args.moves):
        # Alternate with the old path (the sample generated inside each snapshot), so both
        # see the same machine load: the other agents' work moves these numbers a lot.
        inline = bool(i % 2) and args.compare_inline
        app.session.sample_in_snapshots = inline
        value = round(0.2 + 0.6 * ((i * 37) % 11) / 10, 2)
        start = time.perf_counter()
        app.c.slider.value = value
        times[inline].append(time.perf_counter() - start)
        waiter = getattr(app.display, "wait_sample", None)
        if waiter is not None:  # let the background sample finish before the next move
            waiter(60)
        app.curve.wait(300)
    for inline, label in ((False, "sample in the background"), (True, "sample inline (old)")):
        if times[inline]:
            t = times[inline]
            print(f"gpt-tiny slider handler, {label}, {len(t)} moves: median "
                  f"{statistics.median(t):.3f} s, min {min(t):.3f} s, max {max(t):.3f} s")
    start = time.perf_counter()
    app.session.sample()
    sample_s = time.perf_counter() - start
    print(f"one text sample (Session.sample): {sample_s:.3f} s")
    app.close()


if __name__ == "__main__":
    main()
