"""What the room serves besides the dashboard (explorer.cli.room): the "room is full" page,
the session banner script its pages get (the longer wait for slow widget modules is
explorer.compat.anywidget's) and
plotly's widget module, served once by URL (explorer.ui.served)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from functools import cache
from pathlib import Path

import tornado.web

from ..config import PLOTLY_VALIDATORS_USED
from ..files import write_text

FULL_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>The room is full</title>
<meta http-equiv="refresh" content="60">
<style>body{{font-family:system-ui,sans-serif;max-width:34em;margin:4em auto;padding:0 1em;
color:#222}}h1{{font-size:1.5em}}</style></head>
<body><h1 class="cx-room-full">The room is full</h1>
<p>{count} of {cap} places are taken on this Compression Explorer server. Each visitor
gets their own live session, and this machine holds no more right now.</p>
<p>Try again in a minute: this page reloads itself every 60 seconds.</p></body></html>
"""

# 429: one client address already holds `count` kernels whose pages never connected (see
# room_places). A browser's page connects within seconds, so a class behind one address
# only waits a moment; a client that never connects gets no further kernel.
ADDRESS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Too many pages starting</title>
<meta http-equiv="refresh" content="{retry}">
<style>body{{font-family:system-ui,sans-serif;max-width:34em;margin:4em auto;padding:0 1em;
color:#222}}h1{{font-size:1.5em}}</style></head>
<body><h1 class="cx-room-busy">Too many pages starting from your address</h1>
<p>{count} pages opened from {address} have not connected to their session yet. A page
takes its place once it runs in a browser; a session whose page never connects is closed
after a minute.</p>
<p>This page retries in {retry} seconds.</p></body></html>
"""

# The script that widens anywidget's ready timer lives in explorer.compat.anywidget.

# Appended to every dashboard page: poll our session endpoint and show a banner once the
# kernel behind the page is gone or restarted (its widgets then answer nothing).
BANNER_JS = """
<script>
(function () {{
  var url = {url};
  var shown = false;
  function show(text) {{
    if (shown) return;
    shown = true;
    var bar = document.createElement("div");
    bar.className = "cx-session-banner";
    bar.setAttribute("role", "alert");
    bar.style.cssText = "position:fixed;top:0;left:0;right:0;z-index:100000;padding:10px 16px;"
      + "background:#b3261e;color:#fff;font:600 15px system-ui,sans-serif;text-align:center";
    bar.appendChild(document.createTextNode(text + " "));
    var link = document.createElement("a");
    link.href = window.location.href;
    link.textContent = "Reload";
    link.style.color = "#fff";
    bar.appendChild(link);
    document.body.appendChild(bar);
  }}
  function poll() {{
    fetch(url, {{credentials: "same-origin", cache: "no-store"}}).then(function (r) {{
      if (r.status === 404) {{
        show("The session ended: the server shut its kernel down.");
        return null;
      }}
      return r.ok ? r.json() : null;
    }}).then(function (s) {{
      if (s && !s.alive) show("The session ended: the server shut its kernel down.");
      else if (s && s.restarts > 0) show("The session restarted and lost its state.");
    }}).catch(function () {{}}).then(function () {{
      if (!shown) setTimeout(poll, {poll_ms});
    }});
  }}
  setTimeout(poll, {poll_ms});
}})();
</script>
"""


@cache
def served_bundle() -> Path:
    """The widget module served: plotly's, or our build with plotly.js's cartesian bundle
    when it was built from this plotly (explorer.compat.plotly; decided once per server)."""
    from ..compat.plotly import served_widget_bundle

    return served_widget_bundle()


def plotly_module_path() -> str:
    """Where we serve plotly's widget bundle, below the base URL; plotly's version in the path
    lets browsers cache it for good."""
    return f"explorer/static/plotly-{importlib.metadata.version('plotly')}/{served_bundle().name}"


def plotly_dir() -> Path:
    """plotly's package folder, found without importing plotly into the server."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("plotly is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def plotly_bundle_dir() -> Path:
    return served_bundle().parent


class PlotlyModuleHandler(tornado.web.StaticFileHandler):
    """plotly's widget bundle; its URL names plotly's version, so it may be cached for good."""

    def get_cache_time(self, path, modified, mime_type) -> int:
        return 365 * 24 * 3600


def _paths(tree: dict, prefix: str) -> set[str]:
    keys = set()
    for name, value in tree.items():
        key = f"{prefix}.{name}"
        keys.add(key)
        if isinstance(value, dict):
            keys |= _paths(value, key)
    return keys


def template_keys() -> set[str]:
    """Validator keys that plotly's templates set for every trace type (a figure validates
    its template's trace defaults, for trace types it never draws too)."""
    keys: set[str] = set()
    for path in sorted((plotly_dir() / "package_data" / "templates").glob("*.json")):
        data = json.loads(path.read_text("utf-8")).get("data", {})
        for trace, defaults in data.items():
            keys.add(trace)
            for one in defaults if isinstance(defaults, list) else [defaults]:
                if isinstance(one, dict):
                    keys |= _paths(one, trace)
    return keys


def used_validators_file() -> Path:
    """The used part of plotly's validator table, written once for this server's kernels
    (explorer.ui.served.use_served_validators) in a folder of its own, removed at exit."""
    import atexit
    import shutil
    import tempfile

    full = json.loads((plotly_dir() / "validators" / "_validators.json").read_text("utf-8"))
    wanted = template_keys()
    used = {k: v for k, v in full.items()
            if k.split(".", 1)[0] in PLOTLY_VALIDATORS_USED or k in wanted}
    folder = Path(tempfile.mkdtemp(prefix="explorer-plotly-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    target = folder / "validators.json"
    write_text(target, json.dumps(used))
    return target
