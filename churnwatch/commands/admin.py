"""`churnwatch settings`: settings without code, versioned in the operational store.

``show`` prints the settings in effect (or ``--version N``), ``set KEY=VALUE...`` saves a new
version (validated by the same model as churnwatch.yaml; an invalid value is named by its field
path), ``history`` lists the versions (who, when, why, what changed), ``rollback N`` saves a new
version equal to version N, ``diff A B`` compares two versions (0 = churnwatch.yaml). Precedence:
``workflow.config_versions``.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.table import Table

from churnwatch.commands.workflow import storage_named
from churnwatch.options import ConfigOpt, ExitError, HomeOpt, console, context

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from core.settings import Settings

settings_app = typer.Typer(help="Settings without code: show, set KEY=VALUE, history, rollback N, diff A B "
                           "(versions saved in the operational store overlay churnwatch.yaml).",
                           no_args_is_help=True)

AsOpt = Annotated[str | None, typer.Option("--as", help="who makes the change (default: your login name)",
                                           show_default=False)]
CommentOpt = Annotated[str, typer.Option("--comment", "-m", help="why (kept with the version)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _store(home: Path | None, config: Path | None) -> tuple[Engine, Settings]:
    """The operational store and the file's settings (the base the saved versions overlay)."""
    from workflow.db import store_for

    h, base = context(home, config, saved=False)
    return store_for(h.root, base.operations.url), base


def _actor(actor: str | None) -> str:
    if actor is not None:
        if not actor.strip():
            raise ExitError("--as: who makes the change? (empty)")
        return actor.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError) as exc:
        raise ExitError("--as: who makes the change? (no login name to default to)") from exc


def _print_doc(document: dict[str, Any], as_json: bool) -> None:
    from workflow.config_versions import masked

    shown = masked(document)
    if as_json:
        typer.echo(json.dumps(shown, ensure_ascii=False, indent=1))
    else:
        typer.echo(yaml.safe_dump(shown, sort_keys=False, allow_unicode=True).rstrip())


def _when(value: Any) -> str:
    return str(value)[:19].replace("T", " ")


@settings_app.command("show")
@storage_named
def show(version: Annotated[int | None, typer.Option("--version", help="a saved version (default: the settings "
                                                      "in effect)", show_default=False)] = None,
         home: HomeOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The settings in effect (churnwatch.yaml overlaid by the latest saved version), or version N."""
    from workflow.config_versions import document_of, effective, overlay, require, shadowed

    engine, base = _store(home, config)
    if version is not None:
        saved = require(engine, version)
        settings = overlay(base, saved["document"], version)
        header = f"# settings version {version}: saved by {saved['actor']} at {_when(saved['saved_at'])}"
    else:
        settings, latest = effective(base, engine)
        header = "# settings: churnwatch.yaml (no saved version)" if not latest else \
            f"# settings in effect: version {latest} over churnwatch.yaml's bootstrap (data, operations)"
        if latest and (differ := shadowed(base, settings)):
            header += (f"\n# {len(differ)} key(s) of churnwatch.yaml are overridden by the saved version: "
                       f"{', '.join(differ[:8])}{' ...' if len(differ) > 8 else ''}")
    if not as_json:
        typer.echo(header)
    _print_doc(document_of(settings), as_json)


@settings_app.command("set")
@storage_named
def set_(assignments: Annotated[list[str], typer.Argument(help="KEY=VALUE (VALUE as YAML), e.g. "
                                                         "alert_rules.0.threshold=50", show_default=False)],
         comment: CommentOpt = "", actor: AsOpt = None, home: HomeOpt = None, config: ConfigOpt = None,
         based_on: Annotated[int | None, typer.Option("--based-on", help="refuse if the latest version is not "
                                                       "this one (someone saved in between)")] = None) -> None:
    """Save a new settings version with these changes (in effect for the next command and request)."""
    from workflow.config_versions import masked_value, parse_assignment, save

    changes = dict(parse_assignment(a) for a in assignments)
    engine, base = _store(home, config)
    saved = save(engine, _actor(actor), changes, base=base, comment=comment, based_on=based_on)
    if not saved["changed"]:
        console.print(f"no value changed: no version saved (version {saved['version']} stays in effect)")
        return
    console.print(f"settings version {saved['version']} saved by {saved['actor']}: "
                  f"{len(saved['changed'])} value(s) changed")
    doc = saved["settings"].model_dump(mode="json")
    from workflow.config_versions import flatten

    flat = flatten(doc)
    for path in saved["changed"][:20]:
        console.print(f"  {path} = {json.dumps(masked_value(path, flat.get(path)), ensure_ascii=False)}")


@settings_app.command("history")
@storage_named
def history_(limit: Annotated[int, typer.Option("--limit", min=1, help="most versions shown")] = 50,
             home: HomeOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Saved versions, newest first: who, when, why and what changed."""
    from workflow.config_versions import history

    engine, _ = _store(home, config)
    rows = history(engine, limit)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
        return
    if not rows:
        console.print("no saved settings version: churnwatch.yaml is in effect (churnwatch settings set KEY=VALUE)")
        return
    table = Table(title=f"settings versions ({len(rows)} shown, newest first)")
    for c in ("version", "saved at (UTC)", "by", "comment", "changed"):
        table.add_column(c)
    for r in rows:
        changed = ", ".join(r["changed"][:4]) + (f" (+{len(r['changed']) - 4})" if len(r["changed"]) > 4 else "")
        comment = r["comment"] + (f" [rollback to {r['rollback_of']}]" if r["rollback_of"] and
                                  f"rollback to version {r['rollback_of']}" != r["comment"] else "")
        table.add_row(str(r["version"]), _when(r["saved_at"]), r["actor"], comment or "-", changed or "-")
    console.print(table)


@settings_app.command("rollback")
@storage_named
def rollback_(version: Annotated[int, typer.Argument(help="the version to go back to", show_default=False)],
              comment: CommentOpt = "", actor: AsOpt = None, home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Save a new version equal to version N (the history keeps every version)."""
    from workflow.config_versions import rollback

    engine, base = _store(home, config)
    saved = rollback(engine, _actor(actor), version, base=base, comment=comment)
    if not saved["changed"]:
        console.print(f"version {saved['version']} in effect already equals version {version}: no version saved")
        return
    console.print(f"settings version {saved['version']} saved by {saved['actor']}: equal to version {version} "
                  f"({len(saved['changed'])} value(s) changed back)")


@settings_app.command("diff")
@storage_named
def diff_(a: Annotated[int, typer.Argument(help="a version (0 = churnwatch.yaml)", show_default=False)],
          b: Annotated[int, typer.Argument(help="another version (0 = churnwatch.yaml)", show_default=False)],
          home: HomeOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """What changed from version A to version B."""
    from workflow.config_versions import diff, document_of, masked_value, require

    engine, base = _store(home, config)
    docs = [document_of(base) if v == 0 else require(engine, v)["document"] for v in (a, b)]
    changes = [{**d, "before": masked_value(d["path"], d["before"]), "after": masked_value(d["path"], d["after"])}
               for d in diff(*docs)]
    if as_json:
        typer.echo(json.dumps(changes, ensure_ascii=False, indent=1))
        return
    name = {0: "churnwatch.yaml"}
    console.print(f"{name.get(a, f'version {a}')} -> {name.get(b, f'version {b}')}: {len(changes)} change(s)")
    for d in changes:
        console.print(f"  {d['path']}: {json.dumps(d['before'], ensure_ascii=False)} -> "
                      f"{json.dumps(d['after'], ensure_ascii=False)}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(settings_app, name="settings")
