"""Settings without code (issue 16, item 8): the admin's pages over ``workflow.config_versions``.

* ``GET /admin/settings``: one form per section (alert rules, playbooks per tier, e-mail,
  webhooks, tags, sequences, tasks, monitoring thresholds): a field per value, plus a YAML box
  that replaces the whole section (to add or remove a rule, a webhook, a step). Secrets are never
  shown (an empty secret field keeps the saved one).
* ``POST /admin/settings/{section}``: saves a new version with the fields that changed, validated
  by the same ``Settings`` model as churnwatch.yaml; an invalid value is shown next to its field
  (422), in the page's language (pydantic's error types and limits worded in Chinese by
  ``workspace.texts.validation_message``); a save based on an older version than the latest is
  refused (409) and nothing is lost.
* ``GET /admin/settings/history``: the versions with who, when, why and what changed, each with
  a "restore this version" button (``POST /admin/settings/restore/{version}``: a new version
  equal to it).
* Admin role only (403 otherwise); every form carries the CSRF token (the app refuses a POST
  without it). ``install`` adds the pages and makes the app use the latest saved version from
  the next request on (one cheap version query per request).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from pydantic import ValidationError
from starlette.datastructures import FormData

from core.settings import Settings
from workflow.config_versions import (
    EDITABLE_SECTIONS,
    SECRET_KEYS,
    LiveSettings,
    SettingsError,
    VersionConflict,
    current_version,
    document_of,
    flatten,
    history,
    rollback,
    save,
)
from workspace.texts import lang_of, t, validation_message
from workspace.web import engine_of, flash, redirect, render, request_lang, require_role

router = APIRouter(prefix="/admin")
Admin = Annotated[dict[str, Any], Depends(require_role("admin"))]
FIELD = "f:"      # form field of one value: f:<path>
YAML_FIELD = "yaml"  # the whole section as YAML


def install(app: FastAPI) -> None:
    """Add the admin pages to the workspace app; its settings follow the saved versions."""
    live = LiveSettings(app.state.settings, app.state.engine)
    app.state.live_settings = live

    @app.middleware("http")
    async def current_settings(request: Request, call_next):
        try:
            settings = live.get()
        except Exception:  # noqa: BLE001 - keep serving with the settings we have; the admin page shows it
            settings = app.state.settings
        if settings is not app.state.settings:
            app.state.settings = settings
            app.state.scores = None  # rebuilt with the new settings on first use
        return await call_next(request)

    app.include_router(router)


def _is_secret(path: str) -> bool:
    last = path.rsplit(".", 1)[-1].lower()
    return any(s in last for s in SECRET_KEYS) and not last.endswith("_env")


def _fields(request: Request, section: str) -> list[dict[str, Any]]:
    """The section's values as form fields (path, value as text, secret flag)."""
    value = document_of(request.app.state.settings)[section]
    out = []
    for path, leaf in flatten(value, section).items():
        secret = _is_secret(path)
        text = "" if secret or leaf is None else leaf if isinstance(leaf, str) else json.dumps(leaf, ensure_ascii=False)
        out.append({"path": path, "label": path.removeprefix(section + "."), "value": text, "secret": secret,
                    "is_bool": isinstance(leaf, bool), "checked": leaf is True})
    return out


def _sections(request: Request, errors: dict[str, str] | None = None, posted: dict[str, Any] | None = None
              ) -> list[dict[str, Any]]:
    doc = document_of(request.app.state.settings)
    out = []
    for name in EDITABLE_SECTIONS:
        fields = _fields(request, name)
        if posted and posted.get("section") == name:
            for f in fields:
                if f["path"] in posted["values"] and not f["secret"]:
                    f["value"] = posted["values"][f["path"]]
        shown = {f["path"] for f in fields}
        section_errors = [(p, m) for p, m in (errors or {}).items()
                          if (p == name or p.startswith(name + ".")) and p not in shown]
        text = posted["yaml"] if posted and posted.get("section") == name and posted.get("yaml") else \
            yaml.safe_dump(_masked_section(doc[name], name), sort_keys=False, allow_unicode=True)
        out.append({"name": name, "fields": fields, "errors": section_errors, "yaml": text})
    return out


def _masked_section(value: Any, path: str) -> Any:
    from workflow.config_versions import masked

    return masked(value, path)


def field_messages(exc: SettingsError, lang: str) -> dict[str, str]:
    """Field path -> message in ``lang`` (``workspace.texts.validation_message``): pydantic's errors
    by their type and limits (the ``ValidationError`` the settings check raised), the others by
    their wording."""
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        out = {}
        for e in cause.errors():
            path = ".".join(str(p) for p in e["loc"]) or "(settings)"
            out[path] = validation_message(e["type"], e.get("ctx"), e["msg"].removeprefix("Value error, "), lang)
        return out
    return {path: validation_message(None, None, msg, lang) for path, msg in exc.by_field().items()}


def _conflict(request: Request, exc: VersionConflict) -> str:
    lang = request_lang(request)
    return str(exc) if lang_of(lang) != "zh-CN" else t("admin_conflict", lang, version=current_version(
        engine_of(request)))


def _page(request: Request, status_code: int = 200, errors: dict[str, str] | None = None,
          posted: dict[str, Any] | None = None, problem: str | None = None):
    return render(request, "admin_settings.html.j2", status_code=status_code,
                  version=current_version(engine_of(request)), sections=_sections(request, errors, posted),
                  errors=errors or {}, problem=problem, open_section=(posted or {}).get("section"))


@router.get("/settings")
def settings_page(request: Request, _user: Admin):
    return _page(request)


def _parse(raw: str, current: Any, path: str) -> Any:
    """A form value as the type of the value it replaces (text stays text; numbers, booleans,
    null and lists are read as YAML)."""
    if isinstance(current, str):
        return raw
    if raw.strip() == "":
        return None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise SettingsError([(path, f"not a value: {str(exc).splitlines()[0]}")]) from exc


def _changes(request: Request, section: str, form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    """The changed values of a posted section form (path -> value), and what was posted (to show back)."""
    current = flatten(document_of(request.app.state.settings)[section], section)
    posted: dict[str, Any] = {"section": section, "values": {}, "yaml": None}
    box = str(form.get(YAML_FIELD) or "").replace("\r\n", "\n")  # browsers send the textarea with CRLF
    saved = document_of(request.app.state.settings)[section]
    if box.strip():
        try:
            value = yaml.safe_load(box)
        except yaml.YAMLError as exc:
            posted["yaml"] = box
            raise SettingsError([(section, f"not valid YAML: {str(exc).splitlines()[0]}")]) from exc
        if value != _masked_section(saved, section):  # the whole section replaced
            posted["yaml"] = box
            return {section: _keep_secrets(value, saved, section)}, posted
    changes: dict[str, Any] = {}
    for path, old in current.items():
        if isinstance(old, bool):
            new: Any = form.get(FIELD + path) is not None
        else:
            raw = form.get(FIELD + path)
            if raw is None:
                continue
            raw = str(raw)
            posted["values"][path] = raw
            if _is_secret(path) and raw == "":
                continue  # a secret left empty stays as it is
            new = _parse(raw, old, path)
        if new != old:
            changes[path] = new
    return changes, posted


def _keep_secrets(value: Any, saved: Any, path: str) -> Any:
    """A section typed as YAML shows secrets as ``***``; such a value keeps the saved secret."""
    if isinstance(value, dict):
        old = saved if isinstance(saved, dict) else {}
        return {k: old.get(k) if _is_secret(f"{path}.{k}") and v == "***" else
                _keep_secrets(v, old.get(k), f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        old = saved if isinstance(saved, list) else []
        return [_keep_secrets(v, old[i] if i < len(old) else None, f"{path}.{i}") for i, v in enumerate(value)]
    return value


def _file_settings(request: Request) -> Settings:
    """churnwatch.yaml as it is now (the base of the first saved version, and of the keys read only from
    the file): a probe added an ``email:`` block after `churnwatch app` started, saved the playbooks on
    this page, and the version turned e-mail off from the start-up copy; the start-up settings if the file
    no longer reads."""
    try:
        return request.app.state.file_settings()
    except Exception:  # noqa: BLE001 - a file broken since: the settings the app started with
        return request.app.state.settings


@router.post("/settings/{section}")
async def save_section(request: Request, section: str, user: Admin):
    if section not in EDITABLE_SECTIONS:
        raise HTTPException(status_code=404, detail="not_found")
    form = await request.form()
    try:
        based_on = int(str(form.get("based_on", "")))
    except ValueError:
        based_on = None
    comment = str(form.get("comment") or "")[:2000]
    try:
        changes, posted = _changes(request, section, form)
    except SettingsError as exc:
        return _page(request, 422, field_messages(exc, request_lang(request)),
                     {"section": section, "values": {}, "yaml": form.get(YAML_FIELD)})
    if not changes:
        flash(request, "admin_nothing_changed")
        return redirect(f"/admin/settings#{section}")
    try:
        saved = save(engine_of(request), user["name"], changes, base=_file_settings(request), comment=comment,
                     based_on=based_on)
    except VersionConflict as exc:
        return _page(request, 409, None, posted, problem=_conflict(request, exc))
    except SettingsError as exc:
        return _page(request, 422, field_messages(exc, request_lang(request)), posted)
    request.app.state.settings = request.app.state.live_settings.get()
    if not saved["changed"]:
        flash(request, "admin_nothing_changed")
        return redirect(f"/admin/settings#{section}")
    flash(request, "admin_saved", version=saved["version"], count=len(saved["changed"]))
    return redirect(f"/admin/settings#{section}")


@router.get("/settings/history")
def history_page(request: Request, _user: Admin):
    return render(request, "admin_history.html.j2", versions=history(engine_of(request), 200),
                  version=current_version(engine_of(request)))


@router.post("/settings/restore/{version}")
def restore(request: Request, version: int, user: Admin):
    from core.errors import ConfigError

    try:
        saved = rollback(engine_of(request), user["name"], version, base=_file_settings(request))
    except ConfigError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    request.app.state.settings = request.app.state.live_settings.get()
    flash(request, "admin_restored", version=saved["version"], old=version)
    return redirect("/admin/settings/history")
