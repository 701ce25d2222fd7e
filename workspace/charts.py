"""The account page's SHAP waterfall as inline SVG geometry (issue 16 item 4), from the waterfall the
scoring run published (``serving.waterfalls``): no TreeSHAP, no model on a request.

``waterfall_chart(data, lang)`` lays it out as the report's ``shap.plots.waterfall`` does, one row
per bar, read top to bottom: the base value (the model's average raw score), each feature's bar
from where the previous one ended (red: raises the risk, green: lowers it), the other features as
one bar, and the account's raw score at the end, all in log-odds. The template draws the rows;
every text is passed to Jinja2 as text (autoescaped), never as markup.
"""

from __future__ import annotations

import json
import math
from typing import Any

from features.spec import GROUP_LABELS
from workspace.texts import t

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
