"""Colours, fonts and the small CSS the app needs, for light and dark themes."""

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
    font_size: int = 13


LIGHT = Theme("light", "plotly_white", "#ffffff", "#1f2933", kept="#2b7bb9",
              pruned="#e4572e", ghost="rgba(120,120,120,0.25)", line="#111111",
              accent="#17a589", panel="#eef1f4")
DARK = Theme("dark", "plotly_dark", "#111418", "#e6e6e6", kept="#4aa3df",
             pruned="#ff7a59", ghost="rgba(200,200,200,0.22)", line="#f5f5f5",
             accent="#2ecc9a", panel="#1f252d")


def get_theme(name: str | None = None) -> Theme:
    """The named theme, else $EXPLORER_THEME, else light."""
    name = name or os.environ.get("EXPLORER_THEME", "light")
    if name not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}; got {name!r}")
    return LIGHT if name == "light" else DARK


def css(theme: Theme) -> str:
    """Scoped CSS: the app's own box gets the theme's colours, nothing else."""
    return f"""
<style>
.cx-app.cx-theme-{theme.name} {{ background: {theme.background}; color: {theme.text};
  padding: 10px; border-radius: 6px; font-size: {theme.font_size}px; }}
.cx-app.cx-theme-{theme.name} .widget-label, .cx-app.cx-theme-{theme.name} .widget-readout,
.cx-app.cx-theme-{theme.name} .widget-html-content {{ color: {theme.text}; }}
.cx-app.cx-theme-{theme.name} .widget-tab-contents,
.cx-app.cx-theme-{theme.name} .lm-TabPanel-stackedPanel
  {{ background: {theme.background}; color: {theme.text}; }}
.cx-app.cx-theme-{theme.name} label, .cx-app.cx-theme-{theme.name} .widget-label-basic
  {{ color: {theme.text}; }}
.cx-app.cx-theme-{theme.name} .lm-TabBar-tab {{ background: {theme.panel}; color: {theme.text}; }}
.cx-app.cx-theme-{theme.name} .lm-TabBar-tab.lm-mod-current {{ background: {theme.background}; }}
.cx-app .cx-title {{ font-size: 1.35em; font-weight: 600; margin: 0 0 4px 0; }}
.cx-app .cx-status {{ font-family: monospace; }}
.cx-app .cx-status-error {{ color: {theme.pruned}; font-weight: 600; }}
.cx-app .cx-sparsity-label {{ font-weight: 600; font-size: 1.1em; }}
.cx-app .cx-card {{ border: 1px solid {theme.ghost}; border-radius: 6px; padding: 6px 12px;
  margin: 4px 8px 4px 0; min-width: 320px; }}
.cx-app .cx-card table {{ border-collapse: collapse; }}
.cx-app .cx-card td {{ padding: 1px 10px 1px 0; line-height: 1.35; }}
.cx-app .cx-note {{ opacity: 0.8; font-size: 0.92em; line-height: 1.35; max-width: 900px; }}
.cx-app .cx-table td, .cx-app .cx-table th {{ padding: 2px 8px; text-align: right; }}
.cx-app .cx-story {{ font-size: 1.1em; margin: 4px 0 8px 0; }}
.cx-app.cx-talk {{ font-size: {theme.font_size + 5}px; }}
.cx-app.cx-talk .widget-label, .cx-app.cx-talk button, .cx-app.cx-talk .widget-readout
  {{ font-size: {theme.font_size + 4}px; }}
</style>"""
