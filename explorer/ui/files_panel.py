"""Save, Load and Export without file paths: downloads and uploads only.

In a shared dashboard a visitor must not read or write server files, so nothing here
takes a path. Save and Export build the file in memory (Export in a private temporary
folder, deleted at once) and offer it as a browser download: an <a download> link with
a data: URI. That link travels through the widget channel as base64 (4/3 of the size),
so files above DOWNLOAD_MAX_BYTES are refused with a message; the default digits MLP's
session file is about 1-3 MB. A big model's session is offered without its undo steps and
rewind points when they would pass the cap, and the status line says what was left out.

Load is a ChunkedUpload: ipywidgets' FileUpload sends a file as one websocket message,
and messages above about 10 MiB drop the connection silently (PITFALLS), so a 12 MiB
saved session could never come back. The browser here sends the file in CHUNK_BYTES
pieces, a few at a time, each acknowledged by the kernel; a file over UPLOAD_MAX_BYTES
(shown on the button) is refused in the browser before a byte is sent, and the status
says so. No ack for STALL_MS: the button says the upload stalled and is usable again.
The kernel writes the chunks to a temporary file (no copy of the upload in memory),
which goes to explorer.session.persist, which uses
torch.load(weights_only=True) after bounded checks and refuses code, truncated files,
compression bombs and other models, and files naming data or a model outside the folders
the operator allows (the app's data_roots, explorer.session.roots).
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path
from typing import IO

import anywidget
import ipywidgets as W
import traitlets

from ..config import EXPORT_KINDS
from ..session.persist import left_out_bytes
from ..session.session import Session
from .controls import STYLE, button, row, tagged
from .host import Host

# data: links travel through the widget channel as base64; 160 MiB holds an 11M-parameter
# model's session without its undo steps (session_download leaves those out, and says so)
DOWNLOAD_MAX_BYTES = 160 * 2**20
UPLOAD_MAX_BYTES = 200 * 2**20  # sent in chunks, so any size up to this arrives
CHUNK_BYTES = 2**20  # one websocket message each (the transport drops ~10 MiB ones)
CHUNKS_IN_FLIGHT = 4  # the browser waits for the kernel's ack beyond this many
# No ack for this long: the browser says the upload stalled and gives the button back (a
# lost connection or a stuck kernel showed "Load: 70%" forever).
STALL_MS = 30_000

UPLOAD_JS = """
function mib(n) { const m = n / 1048576; return (Number.isInteger(m) ? m : m.toFixed(1)) + " MiB"; }
function render({ model, el }) {
  const input = document.createElement("input");
  input.type = "file";
  input.accept = model.get("accept");
  input.style.display = "none";
  const button = document.createElement("button");
  button.className = "jupyter-button widget-button";
  const label = () => `${model.get("description")} (≤ ${mib(model.get("max_bytes"))})`;
  const idle = () => { button.textContent = label(); button.title = label(); };
  idle();
  button.disabled = model.get("disabled");
  model.on("change:disabled", () => { button.disabled = model.get("disabled"); });
  button.addEventListener("click", () => input.click());
  let acked = 0, aborted = false, wake = null;
  model.on("msg:custom", (msg) => {
    if (msg.kind === "ack") acked = msg.received;
    if (msg.kind === "abort") aborted = true;
    if (wake) { const w = wake; wake = null; w(); }
  });
  // Resolves true on the kernel's next message, false after stall_ms without one.
  const nextMessage = () => new Promise((resolve) => {
    const timer = setTimeout(() => { wake = null; resolve(false); }, model.get("stall_ms"));
    wake = () => { clearTimeout(timer); resolve(true); };
  });
  const percent = (n, size) => Math.round(100 * Math.min(size, n) / Math.max(size, 1));
  input.addEventListener("change", async () => {
    const file = input.files[0];
    input.value = "";
    if (!file) return;
    if (file.size > model.get("max_bytes")) {  // refused before any byte is sent
      model.send({ kind: "too_big", name: file.name, size: file.size });
      return;
    }
    const id = String(Date.now()) + String(Math.random()).slice(2, 8);
    const step = model.get("chunk_bytes"), window = step * model.get("in_flight");
    acked = 0; aborted = false;
    let stalled = false;
    button.disabled = true;  // one upload at a time
    model.send({ kind: "start", id, name: file.name, size: file.size });
    for (let offset = 0; offset < file.size && !aborted && !stalled; offset += step) {
      while (offset - acked >= window && !aborted && !stalled) {
        stalled = !(await nextMessage());
      }
      if (aborted || stalled) break;
      const chunk = await file.slice(offset, offset + step).arrayBuffer();
      model.send({ kind: "chunk", id, offset }, undefined, [chunk]);
      button.textContent = `${model.get("description")}: ` +
        `${percent(offset + step, file.size)}%`;
    }
    while (acked < file.size && !aborted && !stalled) {  // every byte arrived before "end"
      stalled = !(await nextMessage());
    }
    button.disabled = model.get("disabled");
    if (stalled) {  // no answer for stall_ms: say so, and give the control back
      const shown = `${model.get("description")}: stalled at ${percent(acked, file.size)}%`;
      model.send({ kind: "stalled", id, name: file.name, received: acked });
      button.textContent = shown + ", try again";
      button.title = `The server stopped answering for ${model.get("stall_ms") / 1000} s.`;
      setTimeout(() => { if (button.textContent.startsWith(shown)) idle(); },
                 model.get("stall_ms"));
      return;
    }
    if (!aborted) model.send({ kind: "end", id, name: file.name, size: file.size });
    idle();
  });
  el.append(button, input);
}
export default { render };
"""


class ChunkedUpload(anywidget.AnyWidget):
    """A file picker whose file reaches the kernel in acknowledged chunks.

    Chunks go straight to an anonymous temporary file (deleted when closed), so an upload
    costs the kernel no memory of its size: joining them into bytes held the file twice
    (the growing buffer and its copy), 199 MiB raised a kernel's peak by over 400 MiB.
    `on_file(file, name)` gets that file, open for reading at its start, and closed after;
    `on_refused(name, message)` a file that is too large (refused in the browser before any
    upload work), an upload that broke off or stalled. Python re-checks everything the
    browser reports.
    """

    _esm = UPLOAD_JS
    description = traitlets.Unicode("Load").tag(sync=True)
    accept = traitlets.Unicode(".pt").tag(sync=True)
    max_bytes = traitlets.Int(UPLOAD_MAX_BYTES).tag(sync=True)
    chunk_bytes = traitlets.Int(CHUNK_BYTES).tag(sync=True)
    in_flight = traitlets.Int(CHUNKS_IN_FLIGHT).tag(sync=True)
    stall_ms = traitlets.Int(STALL_MS).tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)

    def __init__(self, on_file, on_refused, on_start=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.on_file, self.on_refused, self.on_start = on_file, on_refused, on_start
        self._id: str | None = None
        self._name, self._size, self._received = "", 0, 0
        self._file: IO[bytes] | None = None
        self.on_msg(self._on_msg)

    def too_big(self, name: str, size: int) -> str:
        return (f"{name} is {size / 2**20:.1f} MiB; uploads are limited to "
                f"{self.max_bytes / 2**20:.0f} MiB (use Session.load from Python)")

    def _drop(self) -> None:
        """Forget the upload in progress and delete what arrived of it."""
        self._id, self._received = None, 0
        if self._file is not None:
            self._file.close()
            self._file = None

    def _abort(self, name: str, message: str) -> None:
        self._drop()
        self.send({"kind": "abort"})
        self.on_refused(name, message)

    def _on_msg(self, _widget, content: dict, buffers: list) -> None:
        kind, name = content.get("kind"), str(content.get("name") or self._name)[:200]
        size = content.get("size")
        ours = self._id is not None and content.get("id") == self._id
        if kind == "too_big":
            self.on_refused(name, self.too_big(name, int(size or 0)))
        elif kind == "start":
            self._drop()  # a new upload replaces one that never ended
            if not isinstance(size, int) or size < 0 or size > self.max_bytes:
                self._abort(name, self.too_big(name, int(size or 0)))
            elif self.on_start is not None and (refusal := self.on_start(name)):
                self._abort(name, refusal)
            else:
                self._id, self._name, self._size = content.get("id"), name, size
                self._file = tempfile.TemporaryFile(prefix="explorer-upload-")
        elif kind == "chunk" and ours:
            self._chunk(content, buffers[0] if buffers else b"")
        elif kind == "stalled" and ours:
            received = self._received
            self._drop()
            self.on_refused(self._name, f"{self._name}: the upload stalled after "
                                        f"{received:,} of {self._size:,} bytes (the server "
                                        "stopped answering); try again")
        elif kind == "end" and ours:
            self._end()

    def _chunk(self, content: dict, piece) -> None:
        """Append one chunk (a memoryview of the message's buffer: no copy) and ack it."""
        n = memoryview(piece).nbytes
        if content.get("offset") != self._received or self._received + n > self._size:
            self._abort(self._name, f"{self._name}: the upload broke off (a chunk came out "
                                    "of order); try again")
            return
        try:
            self._file.write(piece)  # type: ignore[union-attr]
        except OSError as err:  # the disk is full, say
            self._abort(self._name, f"{self._name}: the upload could not be stored "
                                    f"({err.strerror or err}); try again later")
            return
        self._received += n
        self.send({"kind": "ack", "received": self._received})

    def _end(self) -> None:
        file, received = self._file, self._received
        self._file = None
        self._drop()
        assert file is not None
        with file:
            if received != self._size:
                self.on_refused(self._name, f"{self._name}: the upload broke off after "
                                            f"{received:,} of {self._size:,} bytes")
                return
            file.seek(0)
            self.on_file(file, self._name)


def _size(file: IO[bytes]) -> int:
    """Bytes from the file's position to its end (the position is kept)."""
    at = file.tell()
    end = file.seek(0, 2)
    file.seek(at)
    return end - at


def session_download(session: Session) -> tuple[bytes, str]:
    """The session file the app offers, and a note on what it leaves out ("" if nothing).

    When the whole file would pass DOWNLOAD_MAX_BYTES, the undo steps and rewind points
    stay out of it (the model, masks, original and curves are kept): said plainly.
    """
    left = left_out_bytes(session)
    if left <= DOWNLOAD_MAX_BYTES:
        data = session.to_bytes()
        if len(data) <= DOWNLOAD_MAX_BYTES:
            return data, ""
    data = session.to_bytes(undo=False)
    return data, (f"undo history and rewind points not saved ({left / 2**20:.1f} MiB; the "
                  f"app's downloads stop at {DOWNLOAD_MAX_BYTES // 2**20} MiB): Session.save "
                  "from Python keeps them")


def download_link(data: bytes, filename: str, label: str) -> str:
    """An HTML link that downloads `data` as `filename` (no server file involved)."""
    if len(data) > DOWNLOAD_MAX_BYTES:
        raise ValueError(f"{filename} is {len(data) / 2**20:.1f} MiB; downloads from the "
                         f"app are limited to {DOWNLOAD_MAX_BYTES // 2**20} MiB (use "
                         "Session.save or export from Python instead)")
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<a class="cx-download" download="{html.escape(filename)}" '
            f'href="data:application/octet-stream;base64,{encoded}">{html.escape(label)} '
            f'({len(data) / 1024:.0f} KiB)</a>')


class FilesPanel:
    """A row: Save session, Load session (upload), Export model as <kind>."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.save = button("Save session", "save-session")
        g = host.guard
        self.upload = tagged(ChunkedUpload(g(self.load_bytes), g(self._refused),
                                           on_start=g(self._busy_message)), "load-session")
        self.kind = tagged(W.Dropdown(options=EXPORT_KINDS, value="masked",
                                      description="Export as", style=STYLE,
                                      # room for "masked" beside its arrow (NARROW cut it)
                                      layout=W.Layout(width="200px")),
                           "export-kind")
        self.export = button("Export model", "export-model")
        self.link = tagged(W.HTML(""), "download")
        self.save.on_click(g(lambda _: self.offer_session()))
        self.export.on_click(g(lambda _: self.offer_export()))
        self.box = W.VBox([row(self.save, self.upload), row(self.kind, self.export),
                           self.link])

    def controls(self) -> list[W.Widget]:
        return [self.save, self.upload, self.kind, self.export]

    def _refuse_if_busy(self) -> bool:
        busy = self.host.jobs.busy
        if busy:
            self.host.set_status("a job is running: stop it or wait before saving or "
                                 "loading", error=True)
        return busy

    def offer_session(self) -> bool:
        """Put a download link for the whole session in the row."""
        if self._refuse_if_busy():
            return False
        try:
            data, note = session_download(self.host.session)
            self.link.value = download_link(data, "explorer-session.pt", "download session")
        except ValueError as err:
            self.host.set_status(f"error: {err}", error=True)
            return False
        self.host.set_status("session ready: click the download link" +
                             (f"; {note}" if note else ""))
        return True

    def offer_export(self) -> bool:
        """Export the selected model as the chosen kind, offered as a download."""
        if self._refuse_if_busy():
            return False
        kind = self.kind.value
        try:
            with tempfile.TemporaryDirectory(prefix="explorer-export-") as folder:
                path = Path(folder) / f"model-{kind}.pt"
                self.host.session.export(path, kind=kind)
                data = path.read_bytes()
            self.link.value = download_link(data, f"model-{kind}.pt", f"download {kind} model")
        except ValueError as err:
            self.host.set_status(f"error: {err}", error=True)
            return False
        self.host.set_status(f"{kind} export ready: click the download link")
        return True

    def _busy_message(self, name: str) -> str | None:
        """Why an upload may not start now (a job is running), or None."""
        if self.host.jobs.busy:
            return (f"{name}: a job is running: stop it or wait before saving or loading")
        self.host.set_status(f"receiving {name} ...")
        return None

    def _refused(self, name: str, message: str) -> None:
        self.host.set_status(f"error: {message}", error=True)

    def load_bytes(self, data: bytes | IO[bytes], name: str = "upload") -> bool:
        """Replace the app's session by the one in `data` (an uploaded file: its bytes or a
        binary file open at its start); the session in use stays, untouched, when the file
        is refused."""
        if self._refuse_if_busy():
            return False
        old = self.host.session
        try:
            size = len(data) if isinstance(data, (bytes, bytearray)) else _size(data)
            if size > self.upload.max_bytes:
                raise ValueError(self.upload.too_big(name, size))
            session = Session.load(data, device=str(old.device),
                                   data_roots=self.host.data_roots)
        except ValueError as err:
            self.host.set_status(f"error: {name}: {err}", error=True)
            return False
        try:
            self.host.adopt_session(session)
        except Exception as err:  # showing it failed: go back to the session in use
            self.host.adopt_session(old)
            self.host.set_status(f"error: {name}: loaded but could not be shown "
                                 f"({type(err).__name__}: {err}); kept the session in use",
                                 error=True)
            return False
        self.link.value = ""
        config = session.slot.config
        self.host.set_status(f"loaded {name}: {config.get('model')} on "
                             f"{config.get('dataset')}, showing the {session.selected}")
        return True
