"""`churnwatch explain` and `churnwatch report` (issue 6): the customer-success manager's view.

``register(app)`` adds the commands to the main Typer app; shared helpers come from
``churnwatch.options``. Both commands are plain functions with explicit parameters, so
``churnwatch demo`` can call them.
Stage libraries are imported inside the functions: MLflow, LightGBM, Evidently and matplotlib
take seconds to load, and ``churnwatch --help`` or a usage error should not wait for them.

No ``from __future__ import annotations`` here: Typer reads the option annotations of the
commands defined inside ``register``, whose aliases (``HomeOpt``...) are local names there.
"""

import logging
import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from churnwatch.options import (
    ConfigOpt,
    ExitError,
    HomeOpt,
    StoreOpt,
    console,
    context,
    err,
    parse_date,
    steps,
    tracking,
)
from core.errors import ChurnwatchError
from core.vocabulary import TIER_BY_KEY, probability_text, tier_label

log = logging.getLogger(__name__)

LangOpt = Annotated[str, typer.Option("--lang", help="en or zh-CN")]


def _view_error(exc: Exception) -> Exception:
    return ExitError(str(exc), 2)


def explain(account_id: str, store: Path | None = None, home: Path | None = None, config: Path | None = None,
            lang: str = "en", as_of: str | None = None, points: int = 12) -> None:
    """Print one account's health, tier, trend, reasons and strengths with their values, and the playbook."""
    from insights.explain import ViewError, load_account_view, normalise_lang, sparkline

    h, settings = context(home, config)
    try:
        lang = normalise_lang(lang)
        view = load_account_view(store or h.store, settings, account_id, lang, as_of=parse_date(as_of, "--as-of"),
                                 trend_points=points)
    except ViewError as exc:
        raise _view_error(exc) from exc
    zh = lang == "zh-CN"
    L = _EXPLAIN_ZH if zh else _EXPLAIN_EN
    colour = TIER_BY_KEY[view.tier].terminal_colour
    change = "" if view.health_change is None else (
        f" ({view.health_change:+d} {L['since']} {view.previous['as_of']})")
    # every value from the data or the config is escaped: "[Team A]" is a name, not Rich markup
    # categories worded as the reasons word them (COMPUTER_SOFTWARE: "computer software"): view.header
    p = {k: escape(str(v)) if v not in (None, "") else "-" for k, v in view.header.items()}
    # a flat table has no MRR column: say so instead of "MRR -" (which reads as an unknown amount)
    money = (L["no_mrr"] if view.from_table and view.mrr is None else
             f"{L['mrr']} {_money(view.mrr)}  {L['loss']} [bold]{_money(view.expected_mrr_loss)}[/]")
    from workflow.facts import display_name

    name = display_name(settings, view.account_id)  # the CRM's name for it, as the workspace shows it
    shown = escape(view.account_id) + (f" · {escape(name)}" if name else "")
    head = (f"[bold]{shown}[/]  [{colour} bold]{view.tier_label}[/]  {L['health']} "
            f"[bold]{view.health_score}[/]{change}  {L['probability']} "
            f"[bold]{probability_text(view.churn_probability)}[/]\n"
            f"{money}"
            # only the CRM fields this account has (a consumer export read "CSM - segment - industry - region -")
            + "".join(f"  {L[k]} {p[k]}" for k in ("csm", "segment", "industry", "region") if p.get(k, "-") != "-")
            + "\n"
            f"[dim]{L['as_of']} {view.as_of}  {L['model']} {escape(view.model_version)}[/]")
    console.print(Panel(Text.from_markup(head), title=L["title"], expand=False))
    trend = view.trend.tail(points)
    spark = sparkline(list(trend["health_score"]))
    console.print(f"{L['trend']} ({len(trend)} {L['score'] if len(trend) == 1 else L['scores']}): [bold]{spark}[/]  "
                  f"{int(trend['health_score'].iloc[0])} → {int(trend['health_score'].iloc[-1])}", markup=True)
    t = Table(show_header=True, header_style="dim", box=None, padding=(0, 2))
    t.add_column(L["as_of"])
    for r in trend.itertuples():
        t.add_column(f"{r.as_of:%m-%d}", justify="right")
    t.add_row(L["health"], *[str(int(v)) for v in trend["health_score"]])
    t.add_row(L["tier"], *[tier_label(v, lang) for v in trend["tier"]])
    console.print(t)
    for title, items, sign in ((L["reasons"], view.reasons, "red"), (L["strengths"], view.strengths, "green")):
        table = Table(title=title, title_justify="left", show_lines=False)
        for c in (L["signal"], L["text"], L["value"], L["contribution"]):
            # fold: a Chinese reason has no spaces to wrap at, and was cut at the width with "…" (a probe)
            table.add_column(c, justify="right" if c == L["contribution"] else "left", overflow="fold")
        for x in items:
            table.add_row(str(x["label"]), str(x["text"]), f"{x['feature']} = {_value(x.get('value'))}",
                          Text(f"{x['contribution']:+.2f}", style=sign))
        if not items:  # a risky account without a risk signal of its own: said so, not "none" (a probe: 19% of high)
            mixed = sign == "red" and view.tier in ("medium_risk", "high_risk")
            shown = shlex.quote(view.account_id)  # a command to paste: an id with spaces or quotes stays one word
            table.add_row("-", Text(L["mixed"].format(account=shown) if mixed else L["none"]), "", "")
        console.print(table)
    if view.churned_on is not None:  # a later run did not score it: no playbook for a customer who left
        key = "gone" if view.grace_days is None else "lapsed"
        words = L[key].format(day=view.churned_on, run=view.not_active_on, grace=view.grace_days)
        console.print(Text(words, style="bold red"))  # the console reads no markup: a styled Text
        return
    pb = view.playbook
    colon = "：" if zh else ": "  # Chinese text takes the full-width colon: "负责人：客户成功经理"
    console.print(Panel(Text.from_markup(f"[bold]{escape(str(pb['action']))}[/]\n{L['owner']}{escape(colon)}"
                                         f"{escape(str(pb['owner']))}   {L['respond']}{escape(colon)}"
                                         f"[bold]{escape(str(pb['respond_within']))}[/]"),
                        title=L["playbook"], expand=False))


def report(store: Path | None = None, home: Path | None = None, config: Path | None = None,
           out: Path | None = None, tier: str | None = None, lang: str = "en", top: int = 50,
           accounts: list[str] | None = None, as_of: str | None = None, model: str | None = None) -> Path:
    """Write the self-contained HTML portfolio report; returns its path."""
    from churnwatch.commands.workflow import open_tasks_for_report
    from insights.explain import ViewError, normalise_lang, normalise_tier, read_scores, scoring_dates
    from insights.report import build_report, version_key

    h, settings = context(home, config)
    target = store or h.store
    try:
        lang = normalise_lang(lang)
        tier = normalise_tier(tier) if tier else None
        dates = scoring_dates(target)
        day = parse_date(as_of, "--as-of") or dates[-1]
        if day not in dates:
            raise ExitError(f"--as-of {day}: no scores that day; scored dates: {', '.join(map(str, dates[-5:]))}")
        scored = read_scores(target, dates=[day], columns=("account_id", "model_version"))
    except ViewError as exc:
        raise _view_error(exc) from exc
    ids = set(scored["account_id"])
    unknown = [a for a in accounts or [] if a not in ids]
    if unknown:
        raise ExitError(f"--account {unknown[0]!r} has no score as of {day} ({len(ids):,} accounts scored then)")
    suffix = "" if lang == "en" else f".{lang}"
    name = f"churn-report-{day}{suffix}.html"
    # --out may be a folder: the report gets its default name inside it
    path = h.reports / name if out is None else (out / name if out.is_dir() else out)
    with steps() as say:
        say("loading the model for the SHAP waterfalls")
        versions = sorted(set(scored["model_version"].astype(str)), key=version_key)
        bundle = _bundle(h, model, versions[-1] if versions else None)
        say(f"rendering the report as of {day}")
        try:
            result = build_report(target, settings, path, lang=lang, tier=tier, top=top, accounts=accounts,
                                  as_of=day, bundle=bundle, progress=say,
                                  open_tasks=open_tasks_for_report(h.root, settings))
        except ViewError as exc:
            raise _view_error(exc) from exc
    unit = "customer" if result.from_table else "account"
    money = (f"MRR at risk {result.mrr_at_risk:,.0f}" if result.mrr_known else
             "a flat table's scores carry no MRR, so no MRR at risk (ordered by churn probability)"
             if result.from_table else
             "no MRR column mapped, so no MRR at risk (ordered by churn probability)")
    if result.asked:
        console.print(f"asked to cancel at the end of their term: {result.asked:,} {unit}(s), "
                      f"{result.asked_later:,} of them leaving after the horizon (they can score healthy; the "
                      "report lists them, the soonest term end first)")
    console.print(f"report: {result.path} ({result.bytes / 1e6:.1f} MB, {result.pages} {unit} pages, "
                  f"{result.waterfalls} SHAP waterfalls, {result.seconds:.1f} s)\n"
                  f"as of {result.as_of}: {result.accounts:,} {unit}s, {money}; "
                  + (f"tier movements since {result.previous_as_of}" if result.previous_as_of else
                     "no previous scoring (tier movements need an earlier "
                     + ("`churnwatch score --table OLDER.csv --as-of DATE`, an older export of the table)"
                        if result.from_table else "`churnwatch score --as-of`)")),
                  markup=False)
    return result.path


def _bundle(h, model: str | None, scored_by: str | None):
    """The bundle for the SHAP waterfalls.

    ``model`` (``--model``: a registry version number, a bundle folder or a models:/ URI)
    must load, else ``ExitError`` (exit 2). Without it, the version that scored the date
    (``scored_by``) is tried; when that cannot be loaded the report has no waterfalls and a
    warning says why. Every loading failure (registry, MLflow, files, a bad URI) is handled
    the same way.
    """
    from mlflow.exceptions import MlflowException

    from training.registry import load_model

    ref = model or scored_by
    if ref is None:
        return None
    uri = f"models:/churnwatch/{ref}" if ref.isdigit() else ref
    try:
        if not uri.startswith("models:/") and not Path(uri).exists():
            # load_model would fall back to the champion: a typo must not load another model
            raise FileNotFoundError(f"{uri} is neither a bundle folder, a version number nor a models:/ URI")
        return load_model(tracking(h), uri)
    except (ChurnwatchError, MlflowException, OSError, ValueError, IndexError) as exc:
        if model is not None:
            raise ExitError(f"--model {model}: cannot load the model ({exc})", 2) from exc
        err.print(f"warning: no SHAP waterfalls: model version {ref} (which scored this date) cannot be loaded "
                  f"({exc})", markup=False)
        return None


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _value(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):  # never in exponent notation: a balance of 115,553.61 is not "1.16e+05"
        if value.is_integer() or abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) >= 1 else f"{value:.3g}"
    return str(value)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    @app.command("explain")
    def explain_command(
        account_id: Annotated[str, typer.Argument(help="the account's id, e.g. ACC-000505")],
        store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None, lang: LangOpt = "en",
        as_of: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD (default: its latest score)")] = None,
        points: Annotated[int, typer.Option("--points", min=2, max=52, help="scores in the trend")] = 12,
    ) -> None:
        """One account: health, tier, trend, reasons and strengths with their values, playbook."""
        explain(account_id, store=store, home=home, config=config, lang=lang, as_of=as_of, points=points)

    @app.command("report")
    def report_command(
        store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None,
        out: Annotated[Path | None, typer.Option("--out", help="HTML file (default <home>/reports/"
                                                 "churn-report-<as-of>.html)")] = None,
        tier: Annotated[str | None, typer.Option("--tier", help="high, medium, low or healthy: top list "
                                                 "and account pages of that tier")] = None,
        lang: LangOpt = "en",
        top: Annotated[int, typer.Option("--top", min=0, max=1000, help="account pages for the top N by "
                                         "expected MRR loss")] = 50,
        account: Annotated[list[str] | None, typer.Option("--account", help="add a page for this account "
                                                          "(repeatable)")] = None,
        as_of: Annotated[str | None, typer.Option("--as-of", help="scoring date (default: the latest)")] = None,
        model: Annotated[str | None, typer.Option("--model", help="bundle folder or models:/ URI for the "
                                                  "waterfalls (default: the version that scored)")] = None,
    ) -> None:
        """Portfolio report (one self-contained HTML file): MRR at risk, who to call first, account pages."""
        report(store=store, home=home, config=config, out=out, tier=tier, lang=lang, top=top, accounts=account,
               as_of=as_of, model=model)


_EXPLAIN_EN = {
    "title": "churnwatch explain", "health": "health", "probability": "churn probability", "mrr": "MRR",
    "loss": "expected MRR loss", "no_mrr": "no MRR column (flat table)", "csm": "CSM", "segment": "segment",
    "industry": "industry", "region": "region", "score": "score",
    "as_of": "as of", "model": "model version", "since": "since", "trend": "health trend", "scores": "scores",
    "tier": "tier", "reasons": "Why: risk signals (actual values)", "strengths": "Strengths",
    "signal": "signal", "text": "reason", "value": "feature = value", "contribution": "log-odds", "none": "none",
    "mixed": ("none stands out on its own: the risk comes from several signals together, each too small or too "
              "typical to word (each one's share: churnwatch report --account {account})"),
    "playbook": "playbook", "owner": "owner", "respond": "respond within",
    "gone": "no longer a customer: churned on {day} (not scored by the run of {run}); no playbook",
    "lapsed": ("lapsed: its term ended on {day} and no term has started since (not scored by the run of {run}); "
               "a renewal within the {grace}-day grace period would keep it a customer; no playbook"),
}
_EXPLAIN_ZH = {
    "title": "客户风险解读", "health": "健康分", "probability": "流失概率", "mrr": "MRR",
    "loss": "预期收入损失", "no_mrr": "无 MRR 列（表格数据）", "csm": "客户成功经理", "segment": "客户分级",
    "industry": "行业", "region": "地区", "score": "次评分",
    "as_of": "评分日期", "model": "模型版本", "since": "较", "trend": "健康分趋势", "scores": "次评分",
    "tier": "风险等级", "reasons": "原因：风险信号（实际数值）", "strengths": "优势", "signal": "信号",
    "text": "原因", "value": "特征 = 数值", "contribution": "对数几率", "none": "无", "playbook": "应对方案",
    "mixed": "没有单独突出的信号：风险来自多个信号的共同作用，每个都太小或太常见而无法单独表述（各信号的贡献："
             "churnwatch report --account {account}）",
    "owner": "负责人", "respond": "响应时限",
    "gone": "已不再是客户：于 {day} 流失（{run} 的评分未包含该客户）；无应对方案",
    "lapsed": "续订中断：其订阅期于 {day} 结束，此后未开始新的订阅期（{run} 的评分未包含该客户）；"
              "在 {grace} 天宽限期内续订仍可保留为客户；无应对方案",
}
