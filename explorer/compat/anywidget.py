"""anywidget's ready timer, widened in the room's pages (written against anywidget 0.11.0).

anywidget's front end gives a widget model 2 s (``AbortSignal.timeout(2000)`` in its
Runtime; ``2e3`` in the minified notebook bundle) to import its module and run
``initialize``; when that takes longer the model's ``ready`` promise is rejected and every
later comm message to it is dropped. plotly's FigureWidget module is a 5 MB bundle compiled
per page: with eight visitors on two cores it takes longer, and the figure draws once and
never changes (issue 20's frozen room). The page script below replaces
``AbortSignal.timeout`` for that one 2000 ms value only. anywidget has no public option
for it; an upstream setting (or a longer default) would make this patch unnecessary.

The canary reads anywidget's shipped JavaScript: the timer must still be there, once per
bundle, with that literal.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import Canary, installed, missing

DIST, WRITTEN_FOR = "anywidget", "0.11.0"
READY_MS = 2000  # the literal the page script keys on
TIMER = re.compile(r"AbortSignal\.timeout\((2000|2e3)\)")
WAIT_MS = 120_000


def bundles() -> list[Path]:
    """anywidget's front-end bundles that hold its Runtime (JupyterLab/Voila and notebook)."""
    import importlib.util

    spec = importlib.util.find_spec("anywidget")
    if spec is None or spec.origin is None:
        missing(DIST, WRITTEN_FOR, "the anywidget package")
    root = Path(spec.origin).parent  # type: ignore[union-attr]
    return sorted((root / "labextension" / "static").glob("*.js")) + \
        sorted((root / "nbextension").glob("*.js"))


def check_ready_timer() -> None:
    found = [p for p in bundles() if TIMER.search(p.read_text(encoding="utf-8", errors="replace"))]
    lab = [p for p in found if "labextension" in p.parts]
    if not lab:
        missing(DIST, WRITTEN_FOR, f"AbortSignal.timeout({READY_MS}) in the labextension "
                "bundle (the widget model's ready timer)")
    for path in found:
        if len(TIMER.findall(path.read_text(encoding="utf-8", errors="replace"))) != 1:
            missing(DIST, WRITTEN_FOR, f"a single AbortSignal.timeout({READY_MS}) in {path.name}")


def wait_script(ms: int = WAIT_MS) -> str:
    """The <script> that widens anywidget's ready timer to `ms` (put before the widget
    manager loads)."""
    return f"""<script>
(function () {{
  var timeout = AbortSignal.timeout.bind(AbortSignal);
  AbortSignal.timeout = function (ms) {{ return timeout(ms === {READY_MS} ? {ms} : ms); }};
}})();
</script>"""


def describe() -> str:
    return f"{DIST} {installed(DIST)}"


CANARIES = [
    Canary(DIST, WRITTEN_FOR, f"AbortSignal.timeout({READY_MS}) in the front-end bundle",
           "the room's longer widget ready timer (figures freeze in a busy room without it)",
           required=False, check=check_ready_timer),
]
