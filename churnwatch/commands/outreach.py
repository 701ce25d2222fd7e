"""`churnwatch email preview|send`, `churnwatch tags` and `churnwatch sequences run|status`
(issue 15 items 4-5): e-mails to accounts, tags and re-activation sequences.

They read the latest scores from the home's store (``workflow.facts``) and write to the
operational store (``workflow.db``); the libraries are imported inside the commands.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from churnwatch.options import ConfigOpt, ExitError, HomeOpt, StoreOpt, console, context

LangOpt = Annotated[str | None, typer.Option("--lang", help="en or zh-CN (default: the contact's language, else "
                                             "email.lang)", show_default=False)]
TemplateOpt = Annotated[str | None, typer.Option("--template", help="template name (default: the account's tier)",
                                                 show_default=False)]


def _now(value: str | None) -> dt.datetime:
    """``--now`` as an aware UTC time (a date is its midnight); default the clock."""
    if not value:
        return dt.datetime.now(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ExitError(f"--now {value.strip()!r}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _lang(value: str | None) -> str | None:
    if value is not None and value not in ("en", "zh-CN"):
        raise ExitError(f"--lang {value!r}: expected en or zh-CN")
    return value


def _setup(home: Path | None, config: Path | None, store: Path | None):
    from workflow.db import store_for

    h, settings = context(home, config)
    return h, settings, store or h.store, store_for(h.root, settings.operations.url)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    email_app = typer.Typer(no_args_is_help=True, help="E-mails to accounts: preview and send (SMTP, email: in "
                            "churnwatch.yaml).")
    seq_app = typer.Typer(no_args_is_help=True, help="Re-activation sequences: run the due steps, show enrolments.")
    app.add_typer(email_app, name="email")
    app.add_typer(seq_app, name="sequences")

    @email_app.command("preview")
    def preview(account: Annotated[str, typer.Argument(help="account id")], lang: LangOpt = None,
                template: TemplateOpt = None,
                out: Annotated[Path | None, typer.Option("--out", help="write <out>.txt and <out>.html too",
                                                         show_default=False)] = None,
                store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None) -> None:
        """Print the e-mail an account would get (subject and plain text); --out writes both parts."""
        from core.files import atomic_write_text
        from workflow.email import render
        from workflow.facts import account_facts

        h, settings = context(home, config)
        facts = account_facts(store or h.store, settings, account)
        rendered = render(facts, settings, _lang(lang), template)
        console.print(f"To: {facts.email or '(no address in the accounts table)'}", soft_wrap=True)
        console.print(f"Subject: {rendered.subject}\n", soft_wrap=True)
        console.print(rendered.text, soft_wrap=True)
        if out is not None:
            for suffix, body in ((".txt", rendered.text), (".html", rendered.html)):
                atomic_write_text(out.with_suffix(suffix), body)
            console.print(f"wrote {out.with_suffix('.txt')} and {out.with_suffix('.html')}")

    @email_app.command("send")
    def send(account: Annotated[str, typer.Argument(help="account id")], lang: LangOpt = None,
             template: TemplateOpt = None,
             to: Annotated[str | None, typer.Option("--to", help="send here instead of the account's contact",
                                                    show_default=False)] = None,
             actor: Annotated[str, typer.Option("--as", help="who sends it (the audit log)")] = "cli",
             store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None) -> None:
        """Send an account its e-mail and record it; exit 1 when it was not sent (the reason said)."""
        from workflow.email import send_email
        from workflow.facts import account_facts

        h, settings, path, engine = _setup(home, config, store)
        row = send_email(engine, settings, account_facts(path, settings, account), lang=_lang(lang),
                         template=template, to=to, actor=actor)
        console.print(f"email {row['id']} {row['status']}: {row['subject']} -> {row['to_addr'] or '(no address)'}"
                      + (f" ({row['error']})" if row["error"] else ""), soft_wrap=True)
        if row["status"] != "sent":
            raise typer.Exit(1)

    @app.command("tags")
    def tags(apply: Annotated[bool, typer.Option("--apply", help="re-judge the tag rules on the latest scores "
                                                 "first")] = False,
             store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None) -> None:
        """The accounts holding each tag (tags: in churnwatch.yaml; set by `sequences run` or --apply)."""
        from workflow.facts import latest_facts
        from workflow.sequences import apply_tags, tag_members

        h, settings, path, engine = _setup(home, config, store)
        if apply:
            apply_tags(engine, settings.tags, latest_facts(path, settings), dt.datetime.now(dt.UTC), actor="cli")
        members = tag_members(engine)
        table = Table(title="tags")
        for c in ("tag", "accounts", "first accounts (since)"):
            table.add_column(c)
        for rule in settings.tags:
            held = members.get(rule.name, [])
            table.add_row(rule.name, f"{len(held):,}", ", ".join(
                f"{m['account_id']} ({str(m['since'])[:10]})" for m in held[:5]) + (" ..." if len(held) > 5 else ""))
        console.print(table)

    @seq_app.command("run")
    def run(now: Annotated[str | None, typer.Option("--now", help="the time to run at (default: now), "
                                                   "YYYY-MM-DD[THH:MM]", show_default=False)] = None,
            store: StoreOpt = None, home: HomeOpt = None, config: ConfigOpt = None) -> None:
        """Tag the accounts, end and start enrolments, and run every step that is due."""
        from workflow.facts import latest_facts
        from workflow.sequences import run_sequences

        moment = _now(now)
        h, settings, path, engine = _setup(home, config, store)
        s = run_sequences(engine, settings, latest_facts(path, settings), moment, actor="cli")
        for tag, n in s.tags.items():
            console.print(f"tag {tag}: +{n['added']:,} -{n['removed']:,}")
        console.print(f"enrolled {s.enrolled:,}; ended " + (", ".join(f"{v:,} {k}" for k, v in s.ended.items())
                                                             or "0"))
        console.print("steps: " + (", ".join(f"{v:,} {k}" for k, v in sorted(s.steps.items())) or "none due"))

    @seq_app.command("status")
    def status_cmd(active: Annotated[bool, typer.Option("--active", help="only enrolments not ended")] = False,
                   home: HomeOpt = None, config: ConfigOpt = None) -> None:
        """Enrolments and the steps each has had."""
        from workflow.sequences import status

        _, _, _, engine = _setup(home, config, None)
        rows = [r for r in status(engine) if not (active and r["ended_at"] is not None)]
        table = Table(title=f"sequence enrolments ({len(rows):,})")
        for c in ("sequence", "account", "enrolled", "steps", "ended"):
            table.add_column(c)
        for r in rows[:200]:
            steps = ", ".join(f"{s['step']}:{s['kind']} {s['status']}" for s in r["steps"]) or "-"
            ended = f"{str(r['ended_at'])[:16]} {r['end_reason']}" if r["ended_at"] else "-"
            table.add_row(r["sequence"], r["account_id"], str(r["enrolled_at"])[:16], steps, ended)
        console.print(table)
