"""A scored account's SHAP waterfall as inline SVG, from the waterfall the scoring run kept
(``serving.waterfalls``): no TreeSHAP and no model where it is drawn (issue 16 item 4, issue 12 item 8).
The workspace's account page and the report's account pages draw it alike, so the two agree with each
other and with the reasons (each reason's bar is that reason's contribution).

``waterfall_chart(data, lang)`` lays it out as ``shap.plots.waterfall`` does, one row per bar, read top
to bottom: the base value (the model's average raw score), each feature's bar from where the previous
one ended (red: raises the risk, green: lowers it), the other features as one bar, and the account's raw
score at the end, all in log-odds. ``waterfall_svg`` writes it; every text (feature names, category
values) is escaped as Jinja2's autoescape would (``markupsafe.escape``), never markup. Drawing 50 of
them takes milliseconds, where ``shap.plots.waterfall`` through matplotlib took about half a second each
(the report's PNG stays for a score kept without its waterfall).
"""

from __future__ import annotations

import json
import math
from typing import Any

from markupsafe import Markup, escape

from features.spec import GROUP_LABELS

#: The chart's own words (the workspace's text table takes them from here).
TEXTS: dict[str, tuple[str, str]] = {
    "wf_base": ("Average account (base value)", "平均客户（基准值）"),
    "wf_final": ("This account (raw score)", "该客户（原始分数）"),
    "wf_other": ("{count} other features", "其他 {count} 个特征"),
    "wf_aria": ("SHAP waterfall of the account's score", "该客户评分的 SHAP 瀑布图"),
}


def t(key: str, lang: str, **values: object) -> str:
    """The chart's word ``key`` in ``lang`` ("zh-CN" or English), ``{name}`` fields filled."""
    en, zh = TEXTS[key]
    text = zh if lang == "zh-CN" else en
    return text.format(**values) if values else text


RISK = "#d62728"
STRENGTH = "#2ca02c"
ROW = 22
LABEL_WIDTH = 330
AMOUNT_WIDTH = 56


def parse(raw: str | None) -> dict | None:
    """The published waterfall JSON of one account (None: none published, or unreadable)."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("bars"), list) else None


def matches(data: dict, rec: dict) -> bool:
    """Whether the waterfall is that of the score ``rec`` (its calibrated probability is the score's)."""
    try:
        return abs(float(data["probability"]) - float(rec["churn_probability"])) <= 1e-6
    except (KeyError, TypeError, ValueError):
        return False


def bar_label(bar: dict, lang: str) -> str:
    """``Group · feature = value`` in ``lang`` (the value as the reasons word it)."""
    en, zh = GROUP_LABELS.get(str(bar.get("signal")), (str(bar.get("signal")), str(bar.get("signal"))))
    shown = bar.get("shown_zh" if lang == "zh-CN" else "shown_en")
    if shown is None:
        shown = "–" if bar.get("value") is None else str(bar.get("value"))
    return f"{zh if lang == 'zh-CN' else en} · {bar.get('feature')} = {shown}"


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def waterfall_chart(data: dict, lang: str, reasons: list[dict] | None = None, width: int = 760) -> dict[str, Any]:
    """The rows and axis of the waterfall (module docstring); ``reasons``: the page's reasons and
    strengths, whose bars are marked (``worded``)."""
    worded = {str(r.get("feature")) for r in reasons or [] if r.get("feature")}
    steps = [(bar_label(b, lang), float(b["contribution"]), str(b.get("feature")), str(b.get("feature")) in worded)
             for b in data["bars"]]
    other = data.get("other") or {}
    if other.get("count"):
        steps.append((t("wf_other", lang, count=other["count"]), float(other.get("contribution", 0.0)), "", False))
    base, final = float(data["base"]), float(data["final"])
    path = [base]
    for _label, amount, _f, _w in steps:
        path.append(path[-1] + amount)
    lo, hi = min(path + [final]), max(path + [final])
    margin = max((hi - lo) * 0.04, 1e-6)
    lo, hi = lo - margin, hi + margin
    left, right = LABEL_WIDTH, width - AMOUNT_WIDTH

    def x(v: float) -> float:
        return round(left + (v - lo) / (hi - lo) * (right - left), 1)

    rows = [{"kind": "base", "y": 0, "label": t("wf_base", lang), "x": x(base), "w": 0, "amount": f"{base:+.3f}",
             "colour": "#555", "feature": "", "contribution": base, "worded": False}]
    for i, (label, amount, feature, is_worded) in enumerate(steps, start=1):
        a, b = path[i - 1], path[i]
        rows.append({"kind": "bar" if feature else "other", "y": i * ROW, "label": label, "x": x(min(a, b)),
                     "w": max(round(abs(x(b) - x(a)), 1), 1.0), "amount": f"{amount:+.3f}",
                     "colour": RISK if amount > 0 else STRENGTH, "feature": feature, "contribution": amount,
                     "worded": is_worded})
    rows.append({"kind": "final", "y": (len(steps) + 1) * ROW, "label": t("wf_final", lang), "x": x(final), "w": 0,
                 "amount": f"{final:+.3f}", "colour": "#1f3a5f", "feature": "", "contribution": final,
                 "worded": False})
    plot_h = (len(steps) + 2) * ROW
    return {"width": width, "height": plot_h + 30, "row": ROW, "plot_h": plot_h, "left": left, "right": right,
            "rows": rows, "ticks": [{"x": x(v), "v": f"{v:g}"} for v in _ticks(lo, hi)],
            "base_x": x(base), "final_x": x(final), "base": base, "final": final,
            "model_probability": float(data.get("model_probability", 0.0)),
            "probability": float(data.get("probability", 0.0))}


def waterfall_svg(chart: dict[str, Any], lang: str) -> Markup:
    """The chart (``waterfall_chart``) as one ``<svg>`` element; its texts escaped."""
    w, row, plot_h = chart["width"], chart["row"], chart["plot_h"]
    parts = [f'<svg class="waterfall" style="width:100%;max-width:{w}px;height:auto" viewBox="0 0 {w} '
             f'{chart["height"]}" role="img" aria-label="{escape(t("wf_aria", lang))}">']
    for tick in chart["ticks"]:
        parts.append(f'<line x1="{tick["x"]}" x2="{tick["x"]}" y1="0" y2="{plot_h}" stroke="#eee"/>'
                     f'<text x="{tick["x"]}" y="{plot_h + 14}" font-size="10" fill="#666" text-anchor="middle">'
                     f'{escape(tick["v"])}</text>')
    for key, colour in (("base_x", "#999"), ("final_x", "#1f3a5f")):
        parts.append(f'<line x1="{chart[key]}" x2="{chart[key]}" y1="0" y2="{plot_h}" stroke="{colour}" '
                     'stroke-dasharray="3 3"/>')
    for r in chart["rows"]:
        worded, bold = (' data-worded="1"', ' font-weight="bold"') if r["worded"] else ("", "")
        parts.append(f'<g class="wf-{r["kind"]}" data-feature="{escape(r["feature"])}" '
                     f'data-contribution="{r["contribution"]:.9f}"{worded}>'
                     f'<text class="wf-label" x="4" y="{r["y"] + 15}" font-size="11"{bold}>{escape(r["label"])}</text>')
        if r["kind"] in ("bar", "other"):
            parts.append(f'<rect x="{r["x"]}" y="{r["y"] + 4}" width="{r["w"]}" height="{row - 8}" '
                         f'fill="{r["colour"]}"><title>{escape(r["label"])}: {escape(r["amount"])}</title></rect>')
        else:
            parts.append(f'<circle cx="{r["x"]}" cy="{r["y"] + 11}" r="4" fill="{r["colour"]}"/>')
        parts.append(f'<text x="{chart["right"] + 4}" y="{r["y"] + 15}" font-size="11" fill="{r["colour"]}">'
                     f'{escape(r["amount"])}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))
