"""The fonts of every matplotlib chart: DejaVu Sans, with Noto Sans CJK as the fallback when it is
installed (Debian's ``fonts-noto-cjk``), so a CSM named 王芳 or a company's own column in Chinese is
drawn, not a row of empty boxes (a probe's `diagnose` charts)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@functools.cache
def plot_fonts() -> dict:
    """rcParams: the font families and a plain minus sign (CJK fonts lack the Unicode one)."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    family = ["DejaVu Sans"] + [n for n in ("Noto Sans CJK SC", "Noto Sans CJK JP") if n in names][:1]
    return {"font.family": family, "axes.unicode_minus": False}


def with_plot_fonts(fn: F) -> F:
    """``fn`` run inside ``matplotlib.rc_context(plot_fonts())``: its figures' texts take the fonts."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(plot_fonts()):
            return fn(*args, **kwargs)

    return run  # type: ignore[return-value]
