"""Settings without code (issue 16, item 8): versions saved in the operational store, validated by
the same ``Settings`` model as churnwatch.yaml (each invalid value named by its field path),
history, rollback, diff, the audit log, the overlay on the file's bootstrap, a long-running
process picking a new version up, and the real CLI: an alert rule changed with ``churnwatch
settings set`` is used by the next ``churnwatch alerts`` run. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.errors import ConfigError
from core.settings import OperationsSettings, Settings
from tests.workflow.test_tasks import BELOW, write_store
from workflow import db
from workflow.audit import AUDIT
from workflow.config_versions import (
    CONFIG_VERSIONS,
    LiveSettings,
    SettingsError,
    VersionConflict,
    current_version,
    diff,
    effective,
    get,
    history,
    masked,
    parse_assignment,
    rollback,
    save,
)

ROOT = Path(__file__).resolve().parents[2]


BASE = Settings(data="/data/crm", operations=OperationsSettings(url="sqlite:////ops/x.sqlite"))


def audit(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(AUDIT).where(AUDIT.c.entity == "settings").order_by(AUDIT.c.id))
        return [{**r, "before": json.loads(r["before"]), "after": json.loads(r["after"])} for r in rows.mappings()]


def test_save_history_rollback_and_diff_with_the_audit_log(engine):
    assert current_version(engine) == 0 and get(engine) is None and effective(BASE, engine) == (BASE, 0)
    first = save(engine, "ana", {"alert_rules.0.threshold": 55, "playbooks.high_risk.respond_within": "2 hours"},
                 base=BASE, comment="tighter")
    assert first["version"] == 1
    assert first["changed"] == ["alert_rules.0.threshold", "playbooks.high_risk.respond_within"]
    second = save(engine, "bo", dict([parse_assignment("alert_rules.0.days=14"),
                                      parse_assignment("webhooks.0={name: ops, url: 'http://127.0.0.1:9/x', "
                                                       "secret: s3}")]), base=BASE)
    assert second["version"] == 2
    now, version = effective(BASE, engine)
    assert version == 2
    assert (now.alert_rules[0].threshold, now.alert_rules[0].days) == (55, 14)
    assert now.playbooks["high_risk"].respond_within == "2 hours" and now.webhooks[0].name == "ops"
    assert now.webhooks[0].secret == "s3"  # used as saved; only shown masked
    assert masked(get(engine, 2)["document"])["webhooks"][0]["secret"] == "***"

    back = rollback(engine, "carla", 1, base=BASE)
    assert back["version"] == 3 and back["rollback_of"] == 1
    assert get(engine, 3)["document"] == get(engine, 1)["document"]
    restored, _ = effective(BASE, engine)
    assert restored.webhooks == [] and restored.alert_rules[0].days == 7 and restored.alert_rules[0].threshold == 55

    rows = history(engine)
    assert [(r["version"], r["actor"]) for r in rows] == [(3, "carla"), (2, "bo"), (1, "ana")]
    assert rows[0]["comment"] == "rollback to version 1" and rows[2]["comment"] == "tighter"
    assert rows[1]["changed"] == ["alert_rules.0", "webhooks.0"]
    changes = {d["path"]: (d["before"], d["after"], d["change"])
               for d in diff(get(engine, 1)["document"], get(engine, 2)["document"])}
    assert changes["alert_rules.0.days"] == (7, 14, "changed")
    assert changes["webhooks.0.url"] == (None, "http://127.0.0.1:9/x", "added")
    assert "alert_rules.0.threshold" not in changes

    entries = audit(engine)
    assert [(e["actor"], e["action"], e["entity_id"]) for e in entries] == [
        ("ana", "save", "1"), ("bo", "save", "2"), ("carla", "rollback", "3")]
    assert entries[0]["before"]["alert_rules.0.threshold"] == 60 and entries[0]["after"]["alert_rules.0.threshold"] \
        == 55 and entries[0]["after"]["comment"] == "tighter"
    assert entries[1]["after"]["webhooks.0.secret"] == "***"  # no secret in the audit log
    assert entries[2]["after"]["rollback_of"] == 1 and entries[2]["before"]["alert_rules.0.days"] == 14


def test_each_invalid_value_is_named_by_its_field_and_nothing_is_saved(engine):
    with pytest.raises(SettingsError) as caught:
        save(engine, "ana", {"alert_rules.0.threshold": 500, "alert_rules.1.kind": "sometimes",
                             "monitoring.drift_share": "lots", "tasks.working_days": [9]}, base=BASE)
    fields = caught.value.by_field()
    assert set(fields) == {"alert_rules.0.threshold", "alert_rules.1.kind", "monitoring.drift_share",
                           "tasks.working_days"}
    assert fields["alert_rules.0.threshold"] == "Input should be less than or equal to 100"
    assert "'below_for', 'tier_drop' or 'entered_high_risk'" in fields["alert_rules.1.kind"]
    assert "weekday numbers 0 (Monday) to 6 (Sunday)" in fields["tasks.working_days"]
    assert "alert_rules.0.threshold: Input should be less than or equal to 100" in str(caught.value)
    with pytest.raises(SettingsError) as unknown:
        save(engine, "ana", {"alert_rules.0.treshold": 50, "playbooks.urgent.owner": "x"}, base=BASE)
    assert unknown.value.by_field()["alert_rules.0.treshold"] == "Extra inputs are not permitted"
    assert unknown.value.by_field()["playbooks.urgent.action_en"] == "Field required"
    with pytest.raises(SettingsError, match=r"alert_rules.5: expected a list index 0..2"):
        save(engine, "ana", {"alert_rules.5.threshold": 50}, base=BASE)
    with pytest.raises(SettingsError, match="operations comes from churnwatch.yaml"):
        save(engine, "ana", {"operations.url": "sqlite:////elsewhere.sqlite"}, base=BASE)
    with pytest.raises(SettingsError, match="data comes from churnwatch.yaml"):
        save(engine, "ana", {"data": "/tmp/other"}, base=BASE)
    with pytest.raises(SettingsError, match="expected KEY=VALUE"):
        parse_assignment("alert_rules.0.threshold")
    with pytest.raises(ConfigError, match="actor is required"):
        save(engine, " ", {"alert_rules.0.threshold": 50}, base=BASE)
    with pytest.raises(ConfigError, match=r"no settings version 4 \(saved versions: none yet\)"):
        rollback(engine, "ana", 4, base=BASE)
    assert current_version(engine) == 0 and audit(engine) == []


def test_the_file_keeps_the_bootstrap_keys(engine):
    save(engine, "ana", {"alert_rules.0.threshold": 50}, base=BASE)
    other_file = Settings(data="/data/other", operations=OperationsSettings(url="sqlite:////ops/y.sqlite"),
                          horizon_days=90)
    now, _ = effective(other_file, engine)
    assert now.data == "/data/other" and now.operations.url == "sqlite:////ops/y.sqlite"
    assert now.alert_rules[0].threshold == 50
    assert now.horizon_days == 60  # a non-bootstrap key: the saved version wins over a later yaml edit


def test_a_save_based_on_an_old_version_is_refused(engine):
    save(engine, "ana", {"alert_rules.0.threshold": 50}, base=BASE)
    save(engine, "bo", {"alert_rules.0.days": 10}, base=BASE, based_on=1)
    with pytest.raises(VersionConflict, match="saved as version 2 by bo after version 1"):
        save(engine, "ana", {"alert_rules.0.threshold": 40}, base=BASE, based_on=1)
    assert current_version(engine) == 2


def test_concurrent_saves_lose_no_change(engine):
    save(engine, "ana", {}, base=BASE)
    errors: list[BaseException] = []

    def change(key: str, value: int) -> None:
        try:
            save(engine, key, {key: value}, base=BASE)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    keys = ["alert_rules.0.threshold", "alert_rules.0.days", "horizon_days", "grace_days"]
    threads = [threading.Thread(target=change, args=(k, v)) for k, v in zip(keys, (41, 12, 70, 20), strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    now, version = effective(BASE, engine)
    assert version == 5
    assert (now.alert_rules[0].threshold, now.alert_rules[0].days, now.horizon_days, now.grace_days) == (41, 12, 70, 20)


def test_a_running_process_picks_a_new_version_up_on_its_next_read(engine):
    live = LiveSettings(BASE, engine)
    assert live.get() is BASE
    same = live.get()
    assert same is BASE  # no new version: nothing re-read
    save(engine, "ana", {"playbooks.high_risk.respond_within": "1 hour"}, base=BASE)
    assert live.get().playbooks["high_risk"].respond_within == "1 hour" and live.version == 1
    assert live.get() is live.get()  # read once per version
    with db.write(engine) as conn:  # a version that no longer validates (e.g. written by an older release)
        conn.execute(CONFIG_VERSIONS.insert().values(saved_at=sa.func.now(), actor="x", comment="",
                                                     document=json.dumps({"horizon_days": "soon"})))
    with pytest.raises(ConfigError, match=r"saved settings version 2 no longer validates .*horizon_days"):
        live.get()


@pytest.fixture
def cli(run_cli):
    """``cli(home, *args)``: ``churnwatch ARGS --home HOME`` through ``churnwatch.cli.main`` in this process
    (tests/conftest.py ``run_cli``: real exit codes and output, one import of the stack for all commands)."""
    return lambda home, *args: run_cli(*args, "--home", home)


@pytest.mark.slow
@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_alert_rule_set_by_cli_is_used_by_the_next_alerts_run(tmp_path, store, request, cli):
    home = tmp_path / "home"
    home.mkdir()
    write_store(home / "store.duckdb", {"a1": [70] + [55] * 8})
    config: dict = {"alert_rules": [BELOW.model_copy(update={"threshold": 50}).model_dump()]}
    if store == "postgres":
        url = request.getfixturevalue("pg_url")
        base = db.create(url)
        with base.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        base.dispose()
        config["operations"] = {"url": url}
    (home / "churnwatch.yaml").write_text(json.dumps(config), encoding="utf-8")
    assert "alerts: 0 new (none)" in cli(home, "alerts").stdout  # health 55 is not below 50

    bad = cli(home, "settings", "set", "alert_rules.0.threshold=500", "alert_rules.0.days=0", "--as", "admin")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == ("error: invalid settings: alert_rules.0.threshold: Input should be less than or "
                                  "equal to 100; alert_rules.0.days: Input should be greater than or equal to 1")
    done = cli(home, "settings", "set", "alert_rules.0.threshold=60", "--comment", "catch 55s", "--as", "admin")
    assert done.returncode == 0, done.stderr
    assert "settings version 1 saved by admin: 1 value(s) changed" in done.stdout
    assert "alert_rules.0.threshold = 60" in done.stdout

    raised = cli(home, "alerts")
    assert raised.returncode == 0, raised.stderr
    assert "alerts: 1 new (below 60 for 7 days)" in raised.stdout  # the saved rule, no restart, yaml unchanged

    shown = cli(home, "settings", "show")
    assert "# settings in effect: version 1" in shown.stdout and "alert_rules.0.threshold" in shown.stdout
    assert "threshold: 60" in shown.stdout
    assert "1 " in cli(home, "settings", "history").stdout
    back = cli(home, "settings", "rollback", "9", "--as", "admin")
    assert back.returncode == 2 and back.stderr.strip() == "error: no settings version 9 (saved versions: 1..1)"
    assert "alert_rules.0.threshold: 50 -> 60" in cli(home, "settings", "diff", "0", "1").stdout


def test_commands_find_the_store_as_workflow_db_does(tmp_path, monkeypatch):
    from churnwatch import options
    from core.home import Home

    assert (options.OPERATIONS_URL_ENV, options.OPERATIONS_SQLITE) == (db.URL_ENV, db.SQLITE_FILE)
    monkeypatch.delenv(db.URL_ENV, raising=False)
    h = Home.resolve(tmp_path)
    assert options.saved_settings(h, BASE.model_copy(update={"operations": OperationsSettings()})).data == \
        "/data/crm"
    assert not (tmp_path / db.SQLITE_FILE).exists()  # no store: none created
    down = Settings(operations=OperationsSettings(url="postgresql+psycopg://nobody:pw@127.0.0.1:1/none"))
    with pytest.raises(ConfigError, match=r"cannot read the saved settings from the operational store "
                                          r"postgresql\+psycopg://nobody:\*\*\*@127.0.0.1:1/none: "):
        options.saved_settings(h, down)
    engine = db.store_for(tmp_path)
    save(engine, "ana", {"alert_rules.0.threshold": 33}, base=Settings())
    assert options.saved_settings(h, Settings()).alert_rules[0].threshold == 33
