"""`churnwatch interview` and `churnwatch review` (issue 15 items 6-7): exit interviews, the
periodic churn review and its findings.

``register(app)`` adds both command groups to the main Typer app. Stage libraries are imported
inside the functions (``churnwatch --help`` should not wait for pandas or SQLAlchemy).
"""

from __future__ import annotations

import getpass
import os
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from churnwatch.options import (
    ConfigOpt,
    DataOpt,
    ExitError,
    HomeOpt,
    StoreOpt,
    console,
    context,
    parse_date,
    require_data,
    steps,
    tracking,
)

interview_app = typer.Typer(no_args_is_help=True, help="Exit interviews: record the five answers, list them, "
                            "print a blank form.")
review_app = typer.Typer(help="The periodic churn review and its findings (tracked work items).")
finding_app = typer.Typer(no_args_is_help=True, help="Findings of the churn review: add, list, update.")
review_app.add_typer(finding_app, name="finding")

ByOpt = Annotated[str | None, typer.Option("--by", help="who makes the change (default: the login name)",
                                           show_default=False)]


def _store(home: Path | None, config: Path | None):
    h, settings = context(home, config, remembered=False)
    return h, settings, _engine(h, settings)


def _engine(h, settings):
    """The operational store's engine; an unreachable server is one line, exit 2."""
    import sqlalchemy as sa

    from workflow.db import operations_url, store_for

    try:
        return store_for(h.root, settings.operations.url)
    except sa.exc.OperationalError as exc:
        url = sa.engine.make_url(operations_url(h.root, settings.operations.url))
        first = str(exc.orig or exc).strip().splitlines()[0]
        raise ExitError(f"cannot open the operational store {url.render_as_string(hide_password=True)}: "
                        f"{first}") from exc


def _invalid(exc) -> ExitError:
    """A pydantic ValidationError in one line per field."""
    parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return ExitError("invalid interview: " + "; ".join(parts))


def _answers_file(path: Path) -> dict:
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExitError(f"--answers {path}: cannot read it ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise ExitError(f"--answers {path}: not YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(loaded, dict):
        raise ExitError(f"--answers {path}: expected a mapping of main_reason, asked_for_help, do_better, instead, "
                        "come_back")
    return loaded


def record(
    account: Annotated[str, typer.Argument(help="the churned account's id")],
    interviewer: Annotated[str, typer.Option("--interviewer", help="who held the interview")],
    answers: Annotated[Path | None, typer.Option("--answers", help="YAML file with main_reason, asked_for_help, "
                                                 "do_better, instead, come_back", show_default=False)] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="1. the main reason for leaving",
                                               show_default=False)] = None,
    asked_for_help: Annotated[str | None, typer.Option("--asked-for-help", help="2. did they ask for help, how "
                                                       "did it go", show_default=False)] = None,
    do_better: Annotated[str | None, typer.Option("--do-better", help="3. the one thing we could have done better",
                                                  show_default=False)] = None,
    instead: Annotated[str | None, typer.Option("--instead", help="4. what they will use instead",
                                                show_default=False)] = None,
    come_back: Annotated[str | None, typer.Option("--come-back", help="5. under what conditions they would come "
                                                  "back", show_default=False)] = None,
    churned_at: Annotated[str | None, typer.Option("--churned-at", help="churn date YYYY-MM-DD (default: the "
                                                   "interview date)", show_default=False)] = None,
    date: Annotated[str | None, typer.Option("--date", help="interview date YYYY-MM-DD (default today)",
                                             show_default=False)] = None,
    lang: Annotated[str, typer.Option("--lang", help="language of the answers: en or zh-CN")] = "en",
    category: Annotated[str | None, typer.Option("--category", help="confirm a reason category (product, price, "
                                                 "service, competitor, business_change, other)",
                                                 show_default=False)] = None,
    avoidable: Annotated[bool | None, typer.Option("--avoidable/--unavoidable", help="confirm the flag (with "
                                                   "--category)", show_default=False)] = None,
    home: HomeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Record (or replace) an exit interview; prints the suggested category and avoidable flag."""
    from pydantic import ValidationError

    from workflow.interviews import InterviewIn
    from workflow.interviews import record as save

    given = {"main_reason": reason, "asked_for_help": asked_for_help, "do_better": do_better, "instead": instead,
             "come_back": come_back}
    values = _answers_file(answers) if answers else {}
    values.update({k: v for k, v in given.items() if v is not None})
    if not values.get("main_reason"):
        raise ExitError("the main reason is missing: pass --reason TEXT or --answers FILE.yaml with main_reason")
    if avoidable is not None and category is None:
        raise ExitError("--avoidable/--unavoidable confirms a category: pass --category too")
    try:
        interview = InterviewIn(account_id=account, interviewer=interviewer, answers=values, lang=lang,
                                interviewed_on=parse_date(date, "--date"),
                                churned_at=parse_date(churned_at, "--churned-at"), category=category,
                                avoidable=avoidable)
    except ValidationError as exc:
        raise _invalid(exc) from exc
    _, _, engine = _store(home, config)
    saved = save(engine, interview)
    _print_interview(saved)


def _flag(value) -> str:
    return "unknown" if value is None else ("avoidable" if value else "unavoidable")


def _print_interview(i: dict) -> None:
    basis = "; ".join(f"{q}: {', '.join(ws)}" for q, ws in i["suggestion_basis"].items()) or "no keyword found"
    console.print(f"exit interview {i['id']}: account {i['account_id']}, churned {i['churned_at']}, interviewed "
                  f"{i['interviewed_on']} by {i['interviewer']}\n"
                  f"suggested: {i['suggested_category']}, {_flag(i['suggested_avoidable'])} ({basis})")
    if i["confirmed"]:
        console.print(f"confirmed by {i['confirmed_by']}: {i['category']}, {_flag(i['avoidable'])}")
    else:
        console.print("not confirmed yet: `churnwatch interview confirm ACCOUNT --category C "
                      "[--avoidable/--unavoidable]`")


def confirm(
    account: Annotated[str, typer.Argument(help="the account whose latest interview to confirm")],
    category: Annotated[str, typer.Option("--category", help="product, price, service, competitor, "
                                          "business_change or other")],
    avoidable: Annotated[bool | None, typer.Option("--avoidable/--unavoidable", show_default=False)] = None,
    churned_at: Annotated[str | None, typer.Option("--churned-at", help="the interview of this churn date",
                                                   show_default=False)] = None,
    by: ByOpt = None,
    home: HomeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Confirm or change the suggested category and avoidable flag."""
    from workflow.interviews import confirm as save

    _, _, engine = _store(home, config)
    _print_interview(save(engine, account, category, avoidable, by or getpass.getuser(),
                          parse_date(churned_at, "--churned-at")))


def list_(
    since: Annotated[str | None, typer.Option("--since", help="churned on or after YYYY-MM-DD",
                                              show_default=False)] = None,
    until: Annotated[str | None, typer.Option("--until", help="churned on or before YYYY-MM-DD",
                                              show_default=False)] = None,
    home: HomeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The recorded exit interviews."""
    from workflow.interviews import list_interviews

    _, _, engine = _store(home, config)
    rows = list_interviews(engine, parse_date(since, "--since"), parse_date(until, "--until"))
    table = Table(title=f"{len(rows)} exit interview(s)")
    for c in ("account", "churned", "interviewer", "category", "avoidable", "confirmed", "main reason"):
        table.add_column(c)
    for r in rows:
        table.add_row(r["account_id"], r["churned_at"], r["interviewer"], r["reason_category"],
                      _flag(r["reason_avoidable"]), "yes" if r["confirmed"] else "suggested",
                      r["main_reason"][:60])
    console.print(table)


def form(
    account: Annotated[str, typer.Argument(help="the account the form is for")],
    lang: Annotated[str, typer.Option("--lang", help="en or zh-CN (the other language is printed under each "
                                      "question)")] = "en",
    out: Annotated[Path | None, typer.Option("--out", help="HTML file (default <home>/reports/"
                                             "interview-<account>.html)", show_default=False)] = None,
    home: HomeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write a printable exit-interview form (HTML) for one account."""
    from core.files import atomic_write_text
    from workflow.interviews import render_form

    h, _ = context(home, config, remembered=False)
    html = render_form(account, lang)
    path = out or h.reports / f"interview-{re.sub(r'[^A-Za-z0-9_.-]', '_', account)[:100]}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, html)
    console.print(f"printable form: {path}")


def review(
    ctx: typer.Context,
    end: Annotated[str | None, typer.Option("--end", help="last day of the period YYYY-MM-DD (default: the data "
                                            "end - grace days)", show_default=False)] = None,
    days: Annotated[int, typer.Option("--days", min=7, max=3650, help="length of the period (and of each side of "
                                      "a fix's before/after comparison)")] = 90,
    data: DataOpt = None,
    home: HomeOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """The churn review: who was lost, what they share, why, which playbooks worked, and the findings with
    each fix measured before against after; writes <home>/reports/review-<period end>.html and .md."""
    if ctx.invoked_subcommand is not None:
        return
    from insights.review import build_review, write_review
    from insights.review_store import save_measurements

    h, settings = context(home, config, data)
    source = require_data(settings)
    engine = _engine(h, settings)
    with steps() as say:
        say("reading the data; who was lost, segments, reasons, the closed loop, the findings")
        r = build_review(source, settings, store or h.store, engine, parse_date(end, "--end"), days,
                         bundle=_champion(h))
        say(f"writing the report to {h.reports}")
        html, md = write_review(r, h.reports)
        save_measurements(r, h.reports)  # the workspace's review page reads the findings' measurements
    d = r.diagnosis.definitions()
    console.print(f"period {r.window.start} - {r.window.end}: {len(r.lost)} relationship(s) ended, "
                  f"{r.lost_mrr:,.0f} MRR lost; {d['churned']} of {d['accounts']} accounts active at the start "
                  f"churned ({d['overall_rate']:.1%})")
    if len(r.diagnosis.reasons):
        a = r.diagnosis.avoidable.set_index("flag").loc["avoidable"]
        top = ", ".join(f"{x.reason_category} {x.share:.0%}" for x in r.diagnosis.reasons.head(3).itertuples())
        console.print(f"why: {top}; avoidable {a['share']:.0%}")
    console.print("playbooks: " + (f"{len(r.loop.table)} comparison(s)" if r.loop else f"skipped ({r.loop_note})"))
    for f in r.findings:
        m = f.get("measurement")
        line = f"finding {f['id']} [{f['status']}] {f['title']} (owner {f['owner']})"
        if m is not None:
            line += (f": {f['metric']} {m.before:.3g} (n={m.before_n}) -> {m.after:.3g} (n={m.after_n}), "
                     f"difference {m.difference:+.3g} [95% CI {m.ci_low:+.3g}, {m.ci_high:+.3g}]: {m.verdict}"
                     if m.difference == m.difference else f": {m.verdict} ({m.note})")
        console.print(line)
    console.print(f"report: {html}\n        {md}")


def _champion(h):
    """The champion model to back-fill closed-loop scores with, or None (no model registered yet)."""
    from core.errors import ChurnwatchError
    from training.registry import load_model

    if not h.mlflow_db.exists() and not os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    try:
        return load_model(tracking(h), None)
    except ChurnwatchError:
        return None


def _print_finding(f: dict, verb: str) -> None:
    change = f", change {f['change_date']} measured by {f['metric']}" if f["change_date"] else ""
    console.print(f"finding {f['id']} {verb}: {f['title']} (owner {f['owner']}, {f['status']}{change})")


def finding_add(
    title: Annotated[str, typer.Option("--title", help="what the review found")],
    owner: Annotated[str, typer.Option("--owner", help="the user who owns the fix (name, e-mail or CRM name)")],
    detail: Annotated[str | None, typer.Option("--detail", show_default=False)] = None,
    change_date: Annotated[str | None, typer.Option("--change-date", help="when the fix went live YYYY-MM-DD",
                                                    show_default=False)] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="first_month_health | retention_90d_new | "
                                               "health_mean | churn_rate", show_default=False)] = None,
    add_owner: Annotated[bool, typer.Option("--add-owner", help="add the owner as a new user if unknown")] = False,
    by: ByOpt = None,
    home: HomeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Record a finding as a tracked work item (status open)."""
    from workflow.review import add

    _, _, engine = _store(home, config)
    _print_finding(add(engine, title, owner, by or getpass.getuser(), detail, parse_date(change_date, "--change-date"),
                       metric, add_owner), "added")


def finding_list(
    status: Annotated[str | None, typer.Option("--status", help="open | in_progress | done | dropped",
                                               show_default=False)] = None,
    home: HomeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The findings, oldest first."""
    from workflow.review import list_findings

    _, _, engine = _store(home, config)
    rows = list_findings(engine, status)
    table = Table(title=f"{len(rows)} finding(s)")
    for c in ("id", "title", "owner", "status", "change date", "metric", "updated"):
        table.add_column(c)
    for f in rows:
        table.add_row(str(f["id"]), f["title"], f["owner"] or "-", f["status"], f["change_date"] or "-",
                      f["metric"] or "-", f["updated_at"][:16])
    console.print(table)


def finding_update(
    finding_id: Annotated[int, typer.Argument(help="the finding's id")],
    status: Annotated[str | None, typer.Option("--status", help="open | in_progress | done | dropped",
                                               show_default=False)] = None,
    owner: Annotated[str | None, typer.Option("--owner", show_default=False)] = None,
    title: Annotated[str | None, typer.Option("--title", show_default=False)] = None,
    detail: Annotated[str | None, typer.Option("--detail", show_default=False)] = None,
    change_date: Annotated[str | None, typer.Option("--change-date", show_default=False)] = None,
    metric: Annotated[str | None, typer.Option("--metric", show_default=False)] = None,
    add_owner: Annotated[bool, typer.Option("--add-owner")] = False,
    by: ByOpt = None,
    home: HomeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Change a finding's status, owner, text, change date or metric (audit-logged)."""
    from workflow.review import update

    _, _, engine = _store(home, config)
    _print_finding(update(engine, finding_id, by or getpass.getuser(), status=status, owner=owner, title=title,
                          detail=detail, change_date=parse_date(change_date, "--change-date"), metric=metric,
                          add_owner=add_owner), "updated")


def register(app: typer.Typer) -> None:
    """Add ``interview`` and ``review`` to ``app``."""
    interview_app.command("record")(record)
    interview_app.command("confirm")(confirm)
    interview_app.command("list")(list_)
    interview_app.command("form")(form)
    review_app.callback(invoke_without_command=True)(review)
    finding_app.command("add")(finding_add)
    finding_app.command("list")(finding_list)
    finding_app.command("update")(finding_update)
    app.add_typer(interview_app, name="interview")
    app.add_typer(review_app, name="review")
