"""Screenshots of the dashboard as a person sees it, for a look-over before UI work is called done.

Starts `explorer dashboard` (light, dark and talk mode), opens it in Debian's Chromium at
1280x720, and writes PNGs to test-artifacts/screens/: the first screen, the page after
moving the sparsity slider, and the page after switching to each zoo model.

    python scripts/screens.py [--models mlp,lenet5] [--modes light,dark,talk]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test-artifacts" / "screens"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DATASET_OF = {"mlp": "digits", "lenet300": "mnist-5k", "lenet5": "mnist-5k",
              "resnet-small": "digits", "gpt-tiny": "pydoc-text"}
STATUS = ".cx-status"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(mode: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    flags = ["--talk"] if mode == "talk" else ["--theme", mode]
    cmd = [sys.executable, "-m", "explorer", "dashboard", "--port", str(port), "--preheat", "0",
           "--no-browser", *flags]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "EXPLORER_TOKEN": ""})
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):  # the server is up when it answers; the page then starts a kernel
        try:
            urllib.request.urlopen(url + "api/status", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    return proc, url


def wait_status(page, pattern: str, timeout_ms: int = 180_000) -> str:
    page.wait_for_function(
        "([sel, pat]) => { const e = document.querySelector(sel);"
        " return e && new RegExp(pat, 'i').test(e.innerText); }",
        arg=[STATUS, pattern], timeout=timeout_ms, polling=200)
    return page.locator(STATUS).first.inner_text()


def set_slider(page, value: str) -> None:
    page.locator(".cx-prune-slider .widget-readout").click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


def switch(page, model: str) -> float:
    page.locator(".cx-tabs .lm-TabBar-tab", has_text="Data & model").click()
    page.locator(".cx-model select").select_option(model)
    page.locator(".cx-dataset select").select_option(DATASET_OF[model])
    start = time.monotonic()
    page.locator(".cx-new-session").click()
    # The status may still name the previous session: wait for this switch's own words.
    if "click again" in wait_status(page, f"click again|loading|new session: {re.escape(model)}"):
        page.locator(".cx-new-session").click()
    wait_status(page, f"new session: {re.escape(model)} on")
    page.locator(".cx-tabs .lm-TabBar-tab", has_text="Prune").click()
    return time.monotonic() - start


def shoot(browser, mode: str, models: list[str]) -> None:
    proc, url = serve(mode)
    try:
        page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        page.goto(url, wait_until="commit", timeout=180_000)
        page.wait_for_selector(".cx-prune-slider .widget-readout", timeout=180_000)
        page.wait_for_timeout(1500)  # let plotly finish its first draw
        page.screenshot(path=str(OUT / f"{mode}_first.png"))
        if mode == "talk":
            return
        set_slider(page, "0.80")
        page.wait_for_timeout(2500)
        page.screenshot(path=str(OUT / f"{mode}_slider80.png"))
        for model in models if mode == "light" else []:
            try:
                seconds = switch(page, model)
            except Exception:
                page.screenshot(path=str(OUT / f"{mode}_{model}_failed.png"))
                raise
            set_slider(page, "0.50")
            page.wait_for_timeout(3000)
            page.screenshot(path=str(OUT / f"{mode}_{model}.png"))
            print(f"{mode} switch to {model}: {seconds:.1f} s", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet300,lenet5,resnet-small,gpt-tiny,mlp")
    parser.add_argument("--modes", default="light,dark,talk")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for mode in args.modes.split(","):
            shoot(browser, mode, args.models.split(","))
        browser.close()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
