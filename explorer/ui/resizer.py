"""Resizer: a tiny widget that keeps the app's plotly figures as wide as their boxes.

plotly's FigureWidget sizes itself once, when first drawn; under anywidget it never hears
of a later change (a JupyterLab panel resized, a column that reflows, a tab shown). This
widget watches the app's box (and the tabs' figure boxes, which are 0 wide while hidden)
and, when a width changes, fires the window `resize` event
to which figures with `responsive: true` answer by fitting their container.
"""

from __future__ import annotations

import anywidget
import traitlets

ESM = """
export default {
  render({ model, el }) {
    let observer = null, mutations = null, fits = null, timer = null, tries = 0;
    const widths = new Map();
    const fire = (wait = 120) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        window.dispatchEvent(new Event("resize"));
        model.set("fired", model.get("fired") + 1);
        model.save_changes();
      }, wait);
    };
    // a figure is shown (theme CSS: .cx-fitted) once it is as wide as its box: plotly draws
    // a new figure 700 px wide, before its box is in the page, then fits it on `resize`
    // (issue 28: the cold page drew the figure narrow, then jumped). One resize is fired
    // for it; a figure that still differs after FIT_WAIT_MS (a fixed width) is shown as is.
    const FIT_WAIT_MS = 1500;
    const firstTry = new WeakMap();
    let frame = null;
    const fitAll = (root) => {
      let waiting = false;
      root.querySelectorAll(".js-plotly-plot:not(.cx-fitted)").forEach((gd) => {
        if (!gd.clientWidth) return;  // hidden (a tab's figure): fitted once shown
        const svg = gd.querySelector(".main-svg");
        if (!svg) { waiting = true; return; }  // not drawn yet
        const off = Math.abs(svg.getBoundingClientRect().width - gd.clientWidth) > 2;
        const since = firstTry.get(gd);
        if (!off || (since !== undefined && performance.now() - since > FIT_WAIT_MS)) {
          gd.classList.add("cx-fitted");
          return;
        }
        if (since === undefined) { firstTry.set(gd, performance.now()); fire(0); }
        waiting = true;
      });
      return waiting;
    };
    const watchFits = (root) => {
      if (frame !== null || !root.querySelector(".js-plotly-plot:not(.cx-fitted)")) return;
      const step = () => { frame = fitAll(root) ? requestAnimationFrame(step) : null; };
      frame = requestAnimationFrame(step);
    };
    const attach = () => {
      const root = el.closest(".cx-app");
      if (!root) { if (tries++ < 100) { timer = setTimeout(attach, 100); } return; }
      observer = new ResizeObserver((entries) => {
        let changed = false;
        for (const e of entries) {
          const w = Math.round(e.contentRect.width);
          if (widths.get(e.target) !== w) { widths.set(e.target, w); changed = true; }
        }
        if (changed) { fire(); watchFits(root); }
      });
      observer.observe(root);
      watchFits(root);  // and again whenever figures are added or a box changes width
      fits = new MutationObserver(() => watchFits(root));
      fits.observe(root, { childList: true, subtree: true });
      // a tab's figure box goes from hidden (0 wide) to shown, and its figure is drawn
      // later (at plotly's default width): each new plot is watched too, so it fits once
      // it exists. Mutations are many while a figure redraws: look at most every 300 ms.
      const boxes = root.querySelectorAll(".cx-distill-figures, .cx-compare-figures");
      const seen = new WeakSet();
      let pending = false;
      const watchPlots = () => {
        pending = false;
        boxes.forEach((box) => box.querySelectorAll(".js-plotly-plot").forEach((gd) => {
          if (!seen.has(gd)) { seen.add(gd); observer.observe(gd); }
        }));
      };
      mutations = new MutationObserver(() => {
        if (!pending) { pending = true; setTimeout(watchPlots, 300); }
      });
      boxes.forEach((box) => {
        observer.observe(box);
        mutations.observe(box, { childList: true, subtree: true });
      });
    };
    attach();
    return () => {
      if (observer) observer.disconnect();
      if (mutations) mutations.disconnect();
      if (fits) fits.disconnect();
      if (frame !== null) cancelAnimationFrame(frame);
      clearTimeout(timer);
    };
  }
};
"""


class Resizer(anywidget.AnyWidget):
    """Fits the app's figures to their boxes whenever the app's width changes."""

    _esm = ESM
    fired = traitlets.Int(0).tag(sync=True)  # resize events fired (tests read it)
