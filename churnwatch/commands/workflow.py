"""`churnwatch alerts`, `tasks` and `users`: the retention workflow in the operational store.

``alerts`` raises the alerts the score history calls for (with their tasks and one digest per
webhook), escalates overdue tasks and sends what is queued. ``tasks`` lists tasks (filters:
``--owner``, ``--tier``, ``--status``, ``--overdue``; ``--json``) and moves them through their
lifecycle (``show``, ``plan``, ``approve``, ``assign``, ``done``, ``cancel``; ``--as`` names the
person). ``users`` adds, lists and imports (the CSMs of the snapshots) people.

Over 400 lines: the three commands share the operational store's opening and its one-line storage errors
(``storage_named``), and ``score`` calls ``run_alerts`` from here.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from churnwatch.options import ConfigOpt, HomeOpt, StoreOpt, console, context
from core.engine import disk_cause
from core.errors import ChurnwatchError, ConfigError, StorageError
from core.files import CAUSES

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from core.settings import Settings

AsOpt = Annotated[str, typer.Option("--as", help="who does it (a user, recorded in the audit log)")]
IdArg = Annotated[int, typer.Argument(help="task id (churnwatch tasks lists them)")]


#: the SQLite file of the operational store this process opened (named by storage errors)
_opened: list[Path] = []


def operations(home: Path | None, config: Path | None) -> tuple[Engine, Settings]:
    """The home's operational store (migrated) and its settings."""
    from sqlalchemy.engine import make_url

    from workflow.db import operations_url, store_for

    h, settings = context(home, config)
    url = operations_url(h.root, settings.operations.url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        _opened[:] = [Path(parsed.database)]
    return store_for(h.root, settings.operations.url), settings


def open_tasks_for_report(root: Path, settings: Settings) -> pd.DataFrame | None:
    """The open tasks the portfolio report lists (``workflow.tasks.open_tasks_frame``), read without
    creating anything: None when the home has no operational store yet, or it cannot be read (the
    report is written without them, a warning says why)."""
    import logging

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from workflow.db import operations_url, store_for
    from workflow.tasks import open_tasks_frame

    url = make_url(operations_url(root, settings.operations.url))
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return None
    try:
        return open_tasks_frame(store_for(root, settings.operations.url))
    except SQLAlchemyError as exc:
        logging.getLogger(__name__).warning("open tasks left out of the report: the operational store cannot be "
                                            "read (%s)", str(exc).splitlines()[0])
        return None


def _sqlite_cause(path: Path, text: str) -> str | None:
    """Why the operational store's SQLite file could not be written, from SQLite's words and the
    file system's flags; None when it is not the disk's fault."""
    cause = disk_cause(text)
    if cause is None and "unable to open database file" not in text.lower():
        return None
    try:
        st = os.statvfs(path.parent if path.parent.exists() else path.parent.parent)
    except OSError:
        return cause
    if st.f_flag & os.ST_RDONLY:
        return CAUSES[errno.EROFS]
    if cause == CAUSES[errno.EROFS] or not os.access(path.parent, os.W_OK):
        return "the database file is read-only (no write permission)"
    return cause or (CAUSES[errno.ENOSPC] if st.f_bavail * st.f_frsize < 64 * 1024 else None)


def storage_named(command: Callable[..., Any]) -> Callable[..., Any]:
    """A command whose operational-store failures caused by the disk (full, read-only, no
    permission) end in one line naming the SQLite file (``StorageError``, exit 2)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Exception as exc:
            if not _opened or not _is_sql(exc):
                raise
            texts, seen, e = [], set(), exc
            while e is not None and id(e) not in seen:
                seen.add(id(e))
                texts.append(str(e))
                e = e.__cause__ or e.__context__
            cause = _sqlite_cause(_opened[0], " ".join(texts))
            if cause is None:
                raise
            raise StorageError(f"cannot write {_opened[0]}: {cause}") from exc

    return run


def _is_sql(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in {"sqlite3", "sqlalchemy", "alembic"}


def run_alerts(target: Path, settings: Settings, engine: Engine, new: pd.DataFrame | None = None,
               scored: Iterable[object] | None = None) -> None:
    """Raise the alerts the score history calls for (unless ``new``: those a scoring run raised), escalate overdue
    tasks, then send every queued delivery (no store transaction held). ``scored``: a scoring run's dates (the
    first-scores line names the newest date when another run scored it: probe p58 took that count for its own)."""
    from workflow.alerts import raise_alerts
    from workflow.notify import email_escalations, send_pending
    from workflow.tasks import escalate_overdue

    new = raise_alerts(target, settings, engine) if new is None else new
    escalated = escalate_overdue(engine, settings)
    email_escalations(engine, settings, escalated)
    sent = send_pending(engine, settings)
    console.print(f"alerts: {len(new):,} new ({', '.join(sorted(set(new['rule']))) if len(new) else 'none'}); "
                  f"escalations: {len(escalated):,}; deliveries: {sent['delivered']:,} sent, {sent['pending']:,} "
                  f"pending for the next run, {sent['failed']:,} failed; retention tasks: churnwatch tasks")
    first, newest = _first_scored_high_risk(target)
    if first:  # a first scoring raises no alert: said, so 17 high-risk accounts and no task is not a puzzle
        other = scored is not None and newest not in {str(d)[:10] for d in scored}
        console.print(f"{first:,} scored at high risk for the first time" + (
            f" (as of {newest}, scored by an earlier run, not this one)" if other else "") + ": alerts fire on a move "
            "into high risk or down a tier between two scorings (or a new customer's first score at high risk in a "
            "later run), so these, scored by the first run, have none yet; `churnwatch report` lists who to call "
            "first, and a later scoring alerts on their moves")


def _first_scored_high_risk(target: Path) -> tuple[int, str]:
    """(``core.scores.first_scored_high_risk``, the history's newest date as ISO text)."""
    import duckdb

    from core.scores import first_scored_high_risk, history_dates
    from core.store import connect

    try:
        with connect(target, read_only=True) as con:
            first = first_scored_high_risk(con)
            return first, (str(history_dates(con)[-1])[:10] if first else "")
    except (ChurnwatchError, duckdb.Error, OSError):  # a hint only: a store busy or gone adds nothing
        return 0, ""


@storage_named
def alerts(store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None,
           resend: Annotated[bool, typer.Option("--resend", help="queue the open alerts again as one new digest "
                                                "per webhook (a new idempotency key), then send")] = False,
           since: Annotated[str | None, typer.Option("--since", help="with --resend: only alerts fired on or "
                                                     "after this date (YYYY-MM-DD)")] = None,
           webhook: Annotated[str | None, typer.Option("--webhook", help="with --resend: only this webhook "
                                                       "(its name in churnwatch.yaml)")] = None) -> None:
    """Evaluate the alert rules on the score history, escalate overdue tasks and send the digests."""
    h, settings = context(home, config)
    if (since or webhook) and not resend:
        raise ConfigError("--since and --webhook go with --resend")
    day = None
    if since is not None:
        try:
            day = dt.date.fromisoformat(since)
        except ValueError:
            raise ConfigError(f"--since {since!r} is not a date (YYYY-MM-DD)") from None
    engine, _ = operations(home, config)
    if resend:
        from workflow.notify import resend as queue_again

        queued = queue_again(engine, settings, since=day, webhook=webhook)
        console.print(f"resend: {len(queued)} digest(s) queued"
                      + (f" ({', '.join(q['webhook'] for q in queued)}; {queued[0]['tasks']} open tasks)"
                         if queued else " (no open alerts)"))
    run_alerts(store or h.store, settings, engine)


tasks_app = typer.Typer(help="Retention tasks: list (filters), show, and move through open -> plan_drafted -> "
                        "approved -> action_assigned -> done, or cancel.", no_args_is_help=False)


@tasks_app.callback(invoke_without_command=True)
@storage_named
def tasks(ctx: typer.Context, home: HomeOpt = None, config: ConfigOpt = None,
          owner: Annotated[str | None, typer.Option("--owner", help="assignee: user id, e-mail, CRM name or name")]
          = None,
          tier: Annotated[str | None, typer.Option("--tier", help="healthy, low_risk, medium_risk or high_risk")]
          = None,
          status: Annotated[str | None, typer.Option("--status", help="a status, active (default: not done or "
                                                     "cancelled) or all")] = None,
          overdue: Annotated[bool, typer.Option("--overdue", help="only tasks past their due time")] = False,
          as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False) -> None:
    """Retention tasks, earliest due first."""
    if ctx.invoked_subcommand is not None:
        return
    from workflow.tasks import list_tasks

    engine, _ = operations(home, config)
    rows = list_tasks(engine, owner=owner, tier=tier, status=status, overdue=overdue)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
        return
    table = Table(title=f"retention tasks ({len(rows):,})")
    for c in ("task", "account", "tier", "status", "owner", "due", "expected loss", "action"):
        table.add_column(c)
    for r in rows[:200]:
        due = (r["due_at"] or "-")[:16].replace("T", " ") + (" (overdue)" if r["overdue"] else "")
        loss = "-" if r["expected_loss"] is None else f"{r['expected_loss']:,.0f}"
        action = r["next_action"] or r["action"] or "-"
        table.add_row(str(r["id"]), r["account_id"], r["tier"], r["status"], r["owner"] or "-", due, loss,
                      action if len(action) <= 30 else action[:29] + "…")
    console.print(table)
    if len(rows) > 200:
        console.print(f"{len(rows) - 200:,} more: narrow with --owner, --tier, --status, --overdue or use --json")


def _print_task(task: dict) -> None:
    for key in ("id", "account_id", "status", "tier", "owner", "due_at", "overdue", "health_score", "mrr",
                "expected_loss", "top_reason_en", "action", "plan", "approved_by", "next_action", "cancel_reason",
                "escalation_level", "alert_ids", "version", "allowed"):
        console.print(f"{key}: {task.get(key)}", markup=False, highlight=False)


@tasks_app.command("show")
@storage_named
def show(task_id: IdArg, home: HomeOpt = None, config: ConfigOpt = None,
         as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """One task, with its audit history."""
    from workflow.audit import history
    from workflow.tasks import get_task

    engine, _ = operations(home, config)
    task = get_task(engine, task_id)
    with engine.connect() as conn:
        task["history"] = history(conn, "task", str(task_id))
    if as_json:
        typer.echo(json.dumps(task, ensure_ascii=False, indent=1, default=str))
        return
    _print_task(task)
    for entry in task["history"]:
        console.print(f"  {str(entry['at'])[:19]} {entry['actor']}: {entry['action']} {entry['after']}",
                      markup=False, highlight=False)


def _move(task_id: int, action: str, actor: str, home: Path | None, config: Path | None, **kw) -> None:
    from workflow.tasks import transition

    engine, _ = operations(home, config)
    task = transition(engine, task_id, action, actor, **kw)
    console.print(f"task {task['id']} ({task['account_id']}): {task['status']}; next: "
                  f"{', '.join(task['allowed']) or 'nothing (final)'}", markup=False, highlight=False)


@tasks_app.command("plan")
@storage_named
def plan(task_id: IdArg, text: Annotated[str, typer.Option("--text", help="the retention plan")], actor: AsOpt,
         home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Draft the task's retention plan (open -> plan_drafted)."""
    _move(task_id, "plan", actor, home, config, text=text)


@tasks_app.command("approve")
@storage_named
def approve(task_id: IdArg, actor: AsOpt, home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Approve the plan (plan_drafted -> approved)."""
    _move(task_id, "approve", actor, home, config)


@tasks_app.command("assign")
@storage_named
def assign(task_id: IdArg, to: Annotated[str, typer.Option("--to", help="the user who does the next action")],
           action: Annotated[str, typer.Option("--action", help="the next action")], actor: AsOpt,
           home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Assign the next action to a person (approved -> action_assigned)."""
    _move(task_id, "assign", actor, home, config, to=to, next_action=action)


@tasks_app.command("done")
@storage_named
def done(task_id: IdArg, actor: AsOpt, home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Close the task (action_assigned -> done)."""
    _move(task_id, "done", actor, home, config)


@tasks_app.command("cancel")
@storage_named
def cancel(task_id: IdArg, reason: Annotated[str, typer.Option("--reason", help="why")], actor: AsOpt,
           home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Cancel the task, with a reason (from any state not final)."""
    _move(task_id, "cancel", actor, home, config, reason=reason)


users_app = typer.Typer(help="People tasks are assigned and escalated to.", no_args_is_help=True)


@users_app.command("add")
@storage_named
def users_add(name: Annotated[str, typer.Argument(help="the person's name")], actor: AsOpt = "admin",
              email: Annotated[str | None, typer.Option("--email")] = None,
              crm_name: Annotated[str | None, typer.Option("--crm-name", help="as in accounts.csm")] = None,
              role: Annotated[str, typer.Option("--role", help="csm, lead or admin")] = "csm",
              team: Annotated[str | None, typer.Option("--team", help="team name (created when new)")] = None,
              manager: Annotated[str | None, typer.Option("--manager", help="whom a lead's escalation goes to")]
              = None,
              lang: Annotated[str, typer.Option("--lang", help="en or zh-CN")] = "en",
              home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Add a user."""
    from workflow.db import write
    from workflow.people import add_user

    engine, _ = operations(home, config)
    with write(engine) as conn:
        user = add_user(conn, name=name, actor=actor, email=email, crm_name=crm_name, role=role, team=team,
                        manager=manager, lang=lang)
    console.print(f"user {user['id']}: {user['name']} ({user['role']})", markup=False, highlight=False)


@users_app.command("set")
@storage_named
def users_set(who: Annotated[str, typer.Argument(help="the user: id, e-mail, CRM name or name")],
              actor: AsOpt = "admin",
              email: Annotated[str | None, typer.Option("--email")] = None,
              role: Annotated[str | None, typer.Option("--role", help="csm, lead or admin")] = None,
              team: Annotated[str | None, typer.Option("--team", help="team name (created when new; '' for none)")]
              = None,
              manager: Annotated[str | None, typer.Option("--manager", help="whom a lead's escalation goes to")]
              = None,
              lang: Annotated[str | None, typer.Option("--lang", help="en or zh-CN")] = None,
              home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Change a user: put a CSM the first alerts created on a team, make a lead, ..."""
    from workflow.db import write
    from workflow.people import update_user

    engine, _ = operations(home, config)
    with write(engine) as conn:
        user = update_user(conn, who, actor=actor, email=email, role=role, team=team, manager=manager, lang=lang)
    console.print(f"user {user['id']}: {user['name']} ({user['role']}, team {user.get('team_id') or '-'})",
                  markup=False, highlight=False)


@users_app.command("list")
@storage_named
def users_list(home: HomeOpt = None, config: ConfigOpt = None,
               as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Every user."""
    from workflow.people import list_users

    engine, _ = operations(home, config)
    with engine.connect() as conn:
        rows = list_users(conn)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
        return
    table = Table(title=f"users ({len(rows):,})")
    for c in ("id", "name", "role", "team", "e-mail", "CRM name", "manager"):
        table.add_column(c)
    for r in rows:
        table.add_row(str(r["id"]), r["name"], r["role"], r["team"] or "-", r["email"] or "-", r["crm_name"] or "-",
                      str(r["manager_id"] or "-"))
    console.print(table)


@users_app.command("import")
@storage_named
def users_import(store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None,
                 actor: AsOpt = "admin") -> None:
    """Add a user (role csm) for every CSM of the accounts in the store not yet known."""
    from core.store import csm_names
    from workflow.db import write
    from workflow.people import list_users, user_for_csm

    h, _ = context(home, config)
    engine, _ = operations(home, config)
    names = csm_names(store or h.store)
    with write(engine) as conn:
        before = len(list_users(conn))
        for name in names:
            user_for_csm(conn, name, actor)
        added = len(list_users(conn)) - before
    console.print(f"users: {added:,} CSM(s) added, {len(names) - added:,} already known")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command()(alerts)
    app.add_typer(tasks_app, name="tasks")
    app.add_typer(users_app, name="users")
