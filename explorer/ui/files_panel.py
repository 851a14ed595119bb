"""Save, Load and Export without file paths: downloads and uploads only.

In a shared dashboard a visitor must not read or write server files, so nothing here
takes a path. Save and Export build the file in memory (Export in a private temporary
folder, deleted at once) and offer it as a browser download: an <a download> link with
a data: URI. That link travels through the widget channel as base64 (4/3 of the size),
so files above DOWNLOAD_MAX_BYTES are refused with a message; the default digits MLP's
session file is about 1-3 MB. Load reads an uploaded file with explorer.session.persist, which
uses torch.load(weights_only=True) and refuses code, truncated files and other models.
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

import ipywidgets as W

from ..config import EXPORT_KINDS
from ..session.session import Session
from .controls import NARROW, STYLE, button, row, tagged
from .host import Host

DOWNLOAD_MAX_BYTES = 20 * 2**20  # 20 MiB: larger data: links strain the widget channel
# The widget channel carries an upload as one websocket message; about 10 MiB drop the
# connection silently here (PITFALLS), so the limit is set, and shown, below that.
UPLOAD_MAX_BYTES = 8 * 2**20


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
        self.upload = tagged(W.FileUpload(accept=".pt", multiple=False,
                                          description=f"Load session (max "
                                          f"{UPLOAD_MAX_BYTES // 2**20} MiB)",
                                          layout=W.Layout(width="auto")), "load-session")
        self.kind = tagged(W.Dropdown(options=EXPORT_KINDS, value="masked",
                                      description="Export as", layout=NARROW, style=STYLE),
                           "export-kind")
        self.export = button("Export model", "export-model")
        self.link = tagged(W.HTML(""), "download")
        g = host.guard
        self.save.on_click(g(lambda _: self.offer_session()))
        self.export.on_click(g(lambda _: self.offer_export()))
        self.upload.observe(g(self._on_upload), names="value")
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
            self.link.value = download_link(self.host.session.to_bytes(),
                                            "explorer-session.pt", "download session")
        except ValueError as err:
            self.host.set_status(f"error: {err}", error=True)
            return False
        self.host.set_status("session ready: click the download link")
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

    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return
        self.load_bytes(bytes(files[0]["content"]), files[0].get("name", "upload"))

    def load_bytes(self, data: bytes, name: str = "upload") -> bool:
        """Replace the app's session by the one in `data` (an uploaded file)."""
        if self._refuse_if_busy():
            return False
        try:
            if len(data) > UPLOAD_MAX_BYTES:
                raise ValueError(f"{name} is {len(data) / 2**20:.0f} MiB; the limit is "
                                 f"{UPLOAD_MAX_BYTES // 2**20} MiB")
            session = Session.load(data, device=str(self.host.session.device))
        except ValueError as err:
            self.host.set_status(f"error: {name}: {err}", error=True)
            return False
        self.host.adopt_session(session)
        self.link.value = ""
        self.host.set_status(f"loaded {name}: {session.config.get('model')} on "
                             f"{session.config.get('dataset')}, showing the {session.selected}")
        return True
