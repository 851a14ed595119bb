"""Colours, fonts and the small CSS the app needs, for light and dark themes.

Colours come from the Okabe-Ito palette, which colour-blind viewers tell apart: kept
weights are blue and pruned ones orange (never red against green); the accuracy line is
bluish green, step losses reddish purple.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

THEMES = ("light", "dark")


@dataclass(frozen=True)
class Theme:
    name: str
    template: str  # plotly template
    background: str
    text: str
    kept: str
    pruned: str
    ghost: str
    line: str
    accent: str
    panel: str  # inactive tabs, input boxes
    step: str = "#CC79A7"  # raw step losses
    on_kept: str = "#ffffff"  # text drawn on a kept bar
    font_size: int = 13


LIGHT = Theme("light", "plotly_white", "#ffffff", "#1f2933", kept="#0072B2",
              pruned="#E69F00", ghost="rgba(120,120,120,0.28)", line="#111111",
              accent="#009E73", panel="#eef1f4")
DARK = Theme("dark", "plotly_dark", "#111418", "#e6e6e6", kept="#56B4E9",
             pruned="#E69F00", ghost="rgba(200,200,200,0.25)", line="#f5f5f5",
             accent="#2BB58A", panel="#1f252d", step="#D98FBC", on_kept="#000000")


def get_theme(name: str | None = None) -> Theme:
    """The named theme, else $EXPLORER_THEME, else light."""
    name = name or os.environ.get("EXPLORER_THEME", "light")
    if name not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}; got {name!r}")
    return LIGHT if name == "light" else DARK


# Under this width of the app's main row the figures wrap below the control column
# (layout.SIDE_WIDTH 400 + the 14 px gap + layout.FIGURE_MIN 540): the column then lays
# the tabs and, beside them, the job rows, instead of leaving that half of the row empty
# above the figure (seen in a 900 px JupyterLab cell, issue 28).
NARROW_PX = 400 + 14 + 540 - 1


def css(theme: Theme) -> str:
    """Scoped CSS: the app's own box gets the theme's colours, nothing else.

    Talk mode (class cx-talk) enlarges the type of the controls as well as the plots,
    through the widget CSS variables, for a projector at the back of a room.

    The job bar (.cx-jobbar) sticks to the window's bottom edge; sticky needs every box
    between it and the page to leave overflow visible, so the app's boxes do, and in Voila
    (body[data-voila]) the lab shell's fixed-height panels become plain blocks: the page
    itself scrolls, not an inner box.

    Nothing moves when a control gets focus or a figure first draws (issue 28): a
    full-width control keeps its margins inside its box (its 2 px overflowed the Prune tab,
    which then scrolled sideways when the slider's readout got focus), and a figure stays
    hidden until the Resizer has fitted it to its box (plotly drew it 700 px wide first,
    then jumped), or 3 s at most."""
    t, app = theme, f".cx-app.cx-theme-{theme.name}"
    return f"""
<style>
{app} {{ background: {t.background}; color: {t.text}; padding: 8px 10px;
  border-radius: 6px; font-size: {t.font_size}px; box-sizing: border-box; }}
{app} .widget-label, {app} .widget-readout, {app} .widget-html-content,
{app} label, {app} .widget-label-basic {{ color: {t.text}; }}
{app} .widget-tab-contents, {app} .lm-TabPanel-stackedPanel
  {{ background: {t.background}; color: {t.text}; }}
{app} .lm-TabBar-tab {{ background: {t.panel}; color: {t.text}; }}
{app} .lm-TabBar-tab.lm-mod-current {{ background: {t.background}; }}
{app} .widget-button, {app} .widget-toggle-button {{ overflow: visible;
  text-overflow: clip; white-space: nowrap; flex: 0 0 auto; padding: 0 10px; }}
{app} .widget-button:disabled {{ opacity: 0.45; }}
{app} .cx-stop:disabled {{ background: {t.panel}; color: {t.text}; }}
.cx-app .cx-row {{ flex-wrap: wrap; gap: 4px 6px; align-items: center; }}
.cx-app .cx-main {{ flex-wrap: wrap; gap: 8px 14px; align-items: flex-start; }}
.cx-app .cx-title {{ font-size: 1.1em; font-weight: 600; opacity: 0.75; }}
.cx-app .cx-headline {{ display: flex; align-items: baseline; gap: 14px; flex-wrap: wrap; }}
.cx-app .cx-big {{ font-size: 2.6em; font-weight: 700; line-height: 1.05; }}
.cx-app .cx-metric {{ font-size: 1.05em; opacity: 0.85; }}
.cx-app .cx-change {{ font-size: 1.15em; }}
.cx-app .cx-better {{ color: {t.accent}; font-weight: 600; }}
.cx-app .cx-worse {{ color: {t.pruned}; font-weight: 600; }}
.cx-app .cx-sub {{ opacity: 0.9; margin-top: 2px; }}
.cx-app .cx-status {{ font-family: monospace; min-height: 1.4em; }}
.cx-app .cx-status .widget-html-content, .cx-app .cx-sample .widget-html-content,
.cx-app .cx-reason, .cx-app .cx-why-not .widget-html-content {{ line-height: 1.35; }}
.cx-app .cx-status-error {{ color: {t.pruned}; font-weight: 600; }}
.cx-app .cx-reason {{ opacity: 0.75; font-size: 0.9em; font-style: italic; }}
.cx-app .cx-card {{ border: 1px solid {t.ghost}; border-radius: 6px; padding: 6px 12px;
  margin: 4px 8px 4px 0; min-width: 300px; }}
.cx-app .cx-card table {{ border-collapse: collapse; }}
.cx-app .cx-card td {{ padding: 1px 10px 1px 0; line-height: 1.35; }}
.cx-app .cx-note {{ opacity: 0.8; font-size: 0.92em; line-height: 1.35; }}
.cx-app .cx-table td, .cx-app .cx-table th {{ padding: 2px 8px; text-align: right; }}
.cx-app .cx-table-scroll {{ overflow-x: auto; max-width: 100%; }}
.cx-app .cx-pins td, .cx-app .cx-pins th {{ white-space: nowrap; }}
.cx-app .cx-pinned-table .cx-note {{ white-space: normal; margin-top: 4px; }}
.cx-app .cx-pins td:first-child, .cx-app .cx-pins th:first-child {{ text-align: left; }}
.cx-app a.cx-download {{ display: inline-block; background: {t.kept}; color: #ffffff;
  padding: 4px 12px; border-radius: 4px; text-decoration: none; font-weight: 600;
  margin: 4px 0; }}
.cx-app a.cx-download::before {{ content: "\\2193  "; }}
.cx-app .cx-story {{ font-size: 1.05em; margin: 2px 0 4px 0; }}
.cx-app .cx-guide .widget-html-content {{ white-space: normal; line-height: 1.5; }}
.cx-app .cx-guide .cx-now {{ background: {t.accent}; color: {t.background}; padding: 1px 7px;
  border-radius: 4px; }}
.cx-app .cx-guide .cx-later {{ opacity: 0.6; }}
.cx-app .cx-kernel-errors {{ display: none; }}
.cx-app .cx-card-size .cx-card {{ max-width: 430px; }}
.cx-app .cx-variants th {{ text-align: left; font-weight: 600; padding: 1px 10px 1px 0; }}
.cx-app .widget-inline-hbox, .cx-app .widget-hprogress
  {{ max-width: calc(100% - 2 * var(--jp-widgets-margin, 2px)); }}
.cx-app .js-plotly-plot:not(.cx-fitted) .svg-container
  {{ visibility: hidden; animation: cx-reveal 0s linear 3s forwards; }}
@keyframes cx-reveal {{ to {{ visibility: visible; }} }}
.cx-app, .cx-app .cx-main, .cx-app .cx-side {{ overflow: visible; }}
.cx-app .cx-jobbar {{ position: sticky; bottom: 0; z-index: 4; background: {t.background};
  padding: 4px 0 2px 0; overflow: visible; }}
.cx-app .cx-main {{ container-type: inline-size; }}
@container (max-width: {NARROW_PX}px) {{
  .cx-app .cx-side {{ flex: 1 1 100% !important; display: grid !important;
    grid-template-columns: minmax(280px, 400px) minmax(0, 1fr);
    grid-template-rows: repeat(4, min-content) 1fr; column-gap: 14px; }}
  .cx-app .cx-side > .cx-tabs {{ grid-row: 1 / span 5; }}
  .cx-app .cx-side > :not(.cx-tabs) {{ grid-column: 2; }}
}}
body[data-voila] .jp-OutputArea, body[data-voila] .jp-OutputArea-child,
body[data-voila] .jp-OutputArea-output {{ overflow: visible; }}
body[data-voila] #main, body[data-voila] #jp-main-content-panel,
body[data-voila] #rendered_cells {{ position: static !important; height: auto !important;
  overflow: visible !important; contain: none !important; }}
.cx-app.cx-talk {{ font-size: {t.font_size + 5}px; --jp-widgets-font-size: 18px;
  --jp-widgets-inline-height: 34px; --jp-widgets-inline-label-width: 120px;
  --jp-ui-font-size1: 18px; }}
.cx-app.cx-talk .lm-TabBar-tab {{ font-size: 18px; min-height: 34px; line-height: 34px; }}
.cx-app.cx-talk .widget-button, .cx-app.cx-talk .widget-toggle-button,
.cx-app.cx-talk .widget-label, .cx-app.cx-talk .widget-readout,
.cx-app.cx-talk select, .cx-app.cx-talk input {{ font-size: 18px; }}
.cx-app.cx-talk .cx-big {{ font-size: 2.4em; }}
.cx-app.cx-talk .widget-inline-hbox > .widget-label {{ width: auto !important;
  max-width: none !important; min-width: 8.5em !important; flex: 0 0 auto;
  text-overflow: clip; overflow: visible; padding-right: 6px; }}
.cx-app.cx-talk .cx-leave-out {{ width: auto !important; }}
.cx-app.cx-talk .cx-leave-out select {{ min-width: 96px; }}
</style>"""
