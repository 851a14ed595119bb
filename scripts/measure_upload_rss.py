"""Peak resident memory of a dashboard kernel while a large session file arrives through the
Load button (issue 26 item 9): the app is built as in a kernel, then the ChunkedUpload gets the
browser's messages (start, 1 MiB chunks, end) as the kernel receives them.

    PYTHONPATH=. python scripts/measure_upload_rss.py --make /tmp/big.pt   # ~199 MiB session
    PYTHONPATH=. python scripts/measure_upload_rss.py /tmp/big.pt

Linux only (reads VmRSS/VmHWM from /proc/self/status; writing 5 to /proc/self/clear_refs
resets the peak to the current RSS before the upload starts).
"""

from __future__ import annotations

import argparse
import gc
import os


def mib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) // 1024
    raise KeyError(key)


def make(path: str) -> None:
    """A lenet300 session at width 15.1 on mnist-5k after 4 one-step Train jobs: five
    weight copies, ~198.6 MiB (under the 200 MiB upload cap)."""
    from explorer import Session

    session = Session("mnist-5k", "lenet300", width=15.1, device="cpu", pretrained=False)
    for _ in range(4):
        session.train(steps=1)
    session.save(path)
    print(f"{path}: {os.path.getsize(path) / 2**20:.1f} MiB")


def measure(path: str) -> None:
    from explorer import Session
    from explorer.ui import ExplorerApp

    app = ExplorerApp(Session("digits", "mlp", device="cpu"))
    upload = app.model_panel.files.upload
    size = os.path.getsize(path)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = mib("VmRSS")
    upload._on_msg(upload, {"kind": "start", "id": "x", "name": "big.pt", "size": size}, [])
    with open(path, "rb") as file:
        offset = 0
        while chunk := file.read(upload.chunk_bytes):  # each message's buffer, as received
            upload._on_msg(upload, {"kind": "chunk", "id": "x", "offset": offset},
                           [memoryview(chunk)])
            offset += len(chunk)
    receiving = mib("VmHWM")
    upload._on_msg(upload, {"kind": "end", "id": "x", "name": "big.pt", "size": size}, [])
    print(f"file {size / 2**20:.1f} MiB; RSS before {before} MiB; peak while receiving "
          f"{receiving} MiB; peak through load {mib('VmHWM')} MiB; RSS after {mib('VmRSS')} MiB")
    print("status:", app.c.status.value)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--make", action="store_true", help="write the test session to FILE")
    args = parser.parse_args()
    make(args.file) if args.make else measure(args.file)
