"""The Load button's chunked upload on the kernel side (explorer.ui.files_panel.ChunkedUpload):
the messages a browser sends, fed as the kernel receives them. An upload costs no memory of
its size (chunks go to a temporary file; joining them held the file twice), and a stalled or
broken upload is refused with a message. The browser side of a stall is in
test_browser_room_places.py."""

from __future__ import annotations

import hashlib
import os
import tracemalloc

import pytest

from explorer.ui.files_panel import ChunkedUpload

MIB = 2**20


class Fed:
    """A ChunkedUpload with its callbacks and messages to the browser recorded."""

    def __init__(self, **kwargs) -> None:
        self.files: list[tuple[str, str]] = []  # (sha256 of the content, name)
        self.refused: list[str] = []
        self.sent: list[dict] = []
        self.handed: list = []
        self.widget = ChunkedUpload(self._on_file, lambda name, msg: self.refused.append(msg),
                                    **kwargs)
        self.widget.send = lambda content, buffers=None: self.sent.append(content)

    def _on_file(self, file, name: str) -> None:
        self.handed.append(file)
        digest = hashlib.sha256()
        for block in iter(lambda: file.read(MIB), b""):  # not all at once: memory is measured
            digest.update(block)
        self.files.append((digest.hexdigest(), name))

    def msg(self, buffers=(), **content) -> None:
        self.widget._on_msg(self.widget, content, list(buffers))

    def upload(self, data: bytes, chunk: int = MIB, end: bool = True) -> None:
        self.msg(kind="start", id="u1", name="s.pt", size=len(data))
        view = memoryview(data)
        for offset in range(0, len(data), chunk):  # a buffer per message, as the kernel gets
            self.msg([view[offset:offset + chunk]], kind="chunk", id="u1", offset=offset)
        if end:
            self.msg(kind="end", id="u1", name="s.pt", size=len(data))


def test_an_upload_costs_no_memory_of_its_size():
    """16 MiB in 1 MiB chunks: Python allocates a few chunks at most (the reader here reads
    1 MiB blocks; the old bytearray and its bytes copy held 32 MiB), and the file
    handed over holds exactly what was sent."""
    data = os.urandom(16 * MIB)
    fed = Fed()
    tracemalloc.start()
    try:
        fed.upload(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB, f"{peak / MIB:.1f} MiB allocated for a 16 MiB upload"
    assert fed.files == [(hashlib.sha256(data).hexdigest(), "s.pt")] and not fed.refused
    acks = [m["received"] for m in fed.sent if m["kind"] == "ack"]
    assert acks == sorted(acks) and acks[-1] == len(data) and len(acks) == 16
    assert fed.handed[0].closed  # the temporary file is gone once handed over


def test_a_stalled_upload_is_refused_and_dropped():
    """The browser says it stalled (no ack for stall_ms): the status names what arrived;
    a late "end" hands nothing over."""
    fed = Fed()
    fed.upload(b"x" * (3 * MIB), end=False)
    fed.msg(kind="stalled", id="u1", name="s.pt", received=2 * MIB)
    assert len(fed.refused) == 1 and "stalled after 3,145,728 of 3,145,728" in fed.refused[0]
    fed.msg(kind="end", id="u1", name="s.pt", size=3 * MIB)
    assert fed.files == []


@pytest.mark.parametrize("case", ["out of order", "short", "too big", "other id"])
def test_broken_uploads_are_refused(case):
    fed = Fed()
    data = b"y" * (2 * MIB)
    if case == "out of order":
        fed.msg(kind="start", id="u1", name="s.pt", size=len(data))
        fed.msg([memoryview(data)[MIB:]], kind="chunk", id="u1", offset=MIB)
        assert "out of order" in fed.refused[0] and {"kind": "abort"} in fed.sent
    elif case == "short":
        fed.msg(kind="start", id="u1", name="s.pt", size=len(data) + 1)
        fed.msg([memoryview(data)], kind="chunk", id="u1", offset=0)
        fed.msg(kind="end", id="u1", name="s.pt", size=len(data) + 1)
        assert "broke off after 2,097,152 of 2,097,153 bytes" in fed.refused[0]
    elif case == "too big":
        fed.msg(kind="start", id="u1", name="s.pt", size=fed.widget.max_bytes + 1)
        assert "uploads are limited" in fed.refused[0]
    else:  # a chunk of another upload is ignored, not appended
        fed.msg(kind="start", id="u1", name="s.pt", size=len(data))
        fed.msg([memoryview(data)], kind="chunk", id="other", offset=0)
        fed.msg(kind="end", id="u1", name="s.pt", size=len(data))
        assert "broke off after 0 of" in fed.refused[0]
    assert fed.files == []


def test_a_session_uploaded_in_chunks_replaces_the_apps_session():
    """The whole path: chunks -> temporary file -> Session.load -> the app shows it."""
    from explorer import Session
    from explorer.ui import ExplorerApp

    app = ExplorerApp(Session("digits", "mlp", device="cpu"))
    saved = Session("digits", "mlp", device="cpu")
    saved.prune(sparsity=0.6)
    upload = app.model_panel.files.upload
    upload.send = lambda content, buffers=None: None
    data = saved.to_bytes()
    upload._on_msg(upload, {"kind": "start", "id": "a", "name": "mine.pt", "size": len(data)}, [])
    for offset in range(0, len(data), upload.chunk_bytes):
        upload._on_msg(upload, {"kind": "chunk", "id": "a", "offset": offset},
                       [memoryview(data)[offset:offset + upload.chunk_bytes]])
    upload._on_msg(upload, {"kind": "end", "id": "a", "name": "mine.pt", "size": len(data)}, [])
    assert "loaded mine.pt" in app.c.status.value, app.c.status.value
    assert app.session is not None and app.session.slot.masks is not None
