"""Headless Chromium: render a self-contained HTML file to a PNG and dump its DOM.

Used for the README pictures and by the tests that check reports really render. Debian's
``chromium`` (``.ci/run`` installs it with ``fonts-noto-cjk`` so Chinese text is not boxes).
Run as root it needs ``--no-sandbox``; the network flags keep it from calling home on a
closed network; the virtual-time budget lets inline JavaScript (Evidently's and our charts)
finish before the capture.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from core.errors import ChurnwatchError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserError(ChurnwatchError):
    """No browser, or it failed to render."""


def find_chromium() -> str:
    explicit = os.environ.get("CHURNWATCH_CHROMIUM")
    if explicit:
        return explicit
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise BrowserError("headless Chromium not found: install Debian's `chromium` (apt-get install chromium) "
                       "or set CHURNWATCH_CHROMIUM to the browser's path")


def _base_args(profile: str, budget_ms: int) -> list[str]:
    args = ["--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-quic", "--no-first-run", "--no-default-browser-check",
            "--hide-scrollbars", "--mute-audio", f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}", "--run-all-compositor-stages-before-draw"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.insert(1, "--no-sandbox")
    return args


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BrowserError(f"Chromium did not finish within {timeout:.0f} s") from exc


def screenshot(html: str | os.PathLike[str], png: str | os.PathLike[str], *, width: int = 1400,
               height: int = 1800, budget_ms: int = 5000, timeout: float = 120) -> Path:
    """Render ``html`` (a file) to ``png`` at ``width`` x ``height``; returns the PNG path."""
    src = Path(html).resolve()
    if not src.is_file():
        raise BrowserError(f"{src}: no such HTML file")
    out = Path(png).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    browser = find_chromium()
    with tempfile.TemporaryDirectory(prefix="churnwatch-chromium-") as profile:
        proc = _run([browser, *_base_args(profile, budget_ms), f"--window-size={width},{height}",
                     f"--screenshot={out}", src.as_uri()], timeout)
    if not out.is_file() or out.stat().st_size == 0:
        raise BrowserError(f"Chromium wrote no screenshot (exit {proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace')[-500:]}")
    return out


def dump_dom(html: str | os.PathLike[str], *, budget_ms: int = 5000, timeout: float = 120) -> str:
    """The DOM after scripts ran (``--dump-dom``), as HTML text."""
    src = Path(html).resolve()
    if not src.is_file():
        raise BrowserError(f"{src}: no such HTML file")
    browser = find_chromium()
    with tempfile.TemporaryDirectory(prefix="churnwatch-chromium-") as profile:
        proc = _run([browser, *_base_args(profile, budget_ms), "--dump-dom", src.as_uri()], timeout)
    dom = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode != 0 or not dom.strip():
        raise BrowserError(f"Chromium dumped no DOM (exit {proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace')[-500:]}")
    return dom


def pixel_spread(png: str | os.PathLike[str]) -> int:
    """How many distinct colours the picture has (1 means blank)."""
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(str(png))
    flat = (np.asarray(img)[..., :3] * 255).astype("uint8").reshape(-1, 3)
    return int(len(np.unique(flat, axis=0)))
