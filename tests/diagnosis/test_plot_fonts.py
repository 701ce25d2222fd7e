"""Charts draw CJK text with Noto Sans CJK where it is installed (Debian's fonts-noto-cjk; `.ci/run` installs
it): a probe's `diagnose` charts showed its CSM 王芳 as empty boxes, matplotlib's "Glyph ... missing" case."""

from __future__ import annotations

import warnings

import pytest

from core.plotfonts import plot_fonts, with_plot_fonts


def _draw(path) -> list[str]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    ax = fig.subplots()
    ax.barh([0, 1], [3, 5])
    ax.set_yticks([0, 1], ["王芳 (n=82)", "Zoë Müller"])
    ax.set_title("按客户成功经理的流失率")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(path)
    return [str(w.message) for w in caught if "missing from" in str(w.message)]


def test_cjk_labels_are_drawn_with_a_cjk_font(tmp_path):
    if len(plot_fonts()["font.family"]) < 2:
        pytest.skip("Noto Sans CJK is not installed (apt-get install fonts-noto-cjk)")
    assert _draw(tmp_path / "plain.png"), "without the fonts the glyphs should be missing (else this proves nothing)"
    assert with_plot_fonts(_draw)(tmp_path / "cjk.png") == []
