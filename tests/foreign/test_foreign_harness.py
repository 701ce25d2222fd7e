"""The acceptance harness's own reading of a user's flat table (``benchmarks/foreign.py``): ``--config``
copied into the run's home, ``--keep`` to a new folder, the independent logistic regression reading the
columns the user meant (the config's exclude list and date format, dates as days, the product's label
words) and a printed table whose header and rows have the same fields."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

import benchmarks.foreign as foreign
from benchmarks.foreign import Figures, analyst_dates, main, print_table, table_baseline
from tests.foreign.inprocess import run_cli

ROOT = Path(__file__).resolve().parents[2]
AS_OF = pd.Timestamp("2026-08-31")
#: the gym's `Last Visit` is dated before the outcome (drawn first, churn follows it): kept by name, as a user
#: who knows the export does (a latest date is left out otherwise)
CONFIG = "date_format: '%d/%m/%Y'\nprofile:\n  exclude: [Cancellation Date]\n  columns: {Last Visit: {}}\n"


def gym_table(path, rows: int = 800, seed: int = 3, labels: tuple[str, str] = ("Yes", "No")):
    """A gym's export: ids with leading zeros, day-first dates (``Join Date`` carries most of the signal:
    new members churn), money as text with a few 'N/A', and ``Cancellation Date`` for churners only."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(10, 1500, rows)
    recency = rng.integers(0, 60, rows)
    visits = rng.poisson(6, rows)
    fee = rng.uniform(20, 80, rows).round(2)
    logit = 1.0 - tenure / 250 + recency / 30 - visits * 0.05 + (fee - 50) / 40
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    day_first = "%d/%m/%Y"
    money = pd.Series([f"${v:,.2f}" for v in fee]).mask(rng.random(rows) < 0.03, "N/A")
    cancel = (AS_OF - pd.to_timedelta(recency, "D") + pd.to_timedelta(rng.integers(1, 20, rows), "D"))
    pd.DataFrame({
        "Member No": [f"{i:06d}" for i in rng.permutation(rows) + 1],
        "Join Date": (AS_OF - pd.to_timedelta(tenure, "D")).strftime(day_first),
        "Last Visit": (AS_OF - pd.to_timedelta(recency, "D")).strftime(day_first),
        "Visits Last 4 Weeks": visits,
        "Monthly Fee": money,
        "Cancellation Date": pd.Series(cancel.strftime(day_first)).where(churned, ""),
        "Churned": np.where(churned, *labels),
    }).to_csv(path, index=False)
    return path


def held_out(table, share: float = 0.3, seed: int = 0) -> pd.DataFrame:
    """Test rows as a run's test_predictions.csv names them: a random share of the ids, with their labels."""
    df = pd.read_csv(table, dtype={"Member No": str})
    test = df.sample(frac=share, random_state=seed)
    return pd.DataFrame({"account_id": test["Member No"],
                         "churn_label": test["Churned"].isin(["Yes", "Y"]).astype(int).to_numpy()})


def lr_auc(table, config=None) -> float:
    preds = held_out(table)
    return roc_auc_score(preds["churn_label"], table_baseline(table, "Churned", "Member No", preds, config))


def write_config(tmp_path, text: str = CONFIG):
    (tmp_path / "cfg").mkdir(exist_ok=True)
    path = tmp_path / "cfg" / "churnwatch.yaml"
    path.write_text(text)
    return path


def test_dates_are_read_as_days_before_the_tables_latest_date():
    df = pd.DataFrame({"iso": ["2026-10-30", "2026-11-01T08:00:00", " "],
                       "day_first": ["30/10/2026", "01/11/2026", "28/10/2026"],
                       "fee": ["$1,234.50", "12", "N/A"], "Churned": ["2026-01-01"] * 3})
    assert analyst_dates(df, "%d/%m/%Y", keep=("Churned",)) == ["iso", "day_first"]
    assert df["iso"].tolist()[:2] == [2.0, 0.0] and np.isnan(df["iso"].iloc[2])  # the blank stays missing
    assert df["day_first"].tolist() == [2.0, 0.0, 4.0]  # not 30102026
    assert df["fee"].tolist() == ["$1,234.50", "12", "N/A"] and df["Churned"].iloc[0] == "2026-01-01"
    plain = pd.DataFrame({"day_first": ["30/10/2026", "01/11/2026"]})
    assert analyst_dates(plain, None) == [] and plain["day_first"].iloc[0] == "30/10/2026"  # no format: not a date


def test_the_configs_exclude_list_keeps_a_leaking_column_out(tmp_path):
    table = gym_table(tmp_path / "gym.csv")
    leaking = lr_auc(table, write_config(tmp_path, "date_format: '%d/%m/%Y'\n"))
    assert leaking > 0.99  # the cancellation date (or its blank) is the label
    assert 0.7 < lr_auc(table, write_config(tmp_path)) < 0.95


def test_day_first_dates_carry_their_signal_with_the_configs_format(tmp_path):
    table = gym_table(tmp_path / "gym.csv")
    read = lr_auc(table, write_config(tmp_path))
    without_dates = pd.read_csv(table, dtype=str).drop(columns=["Join Date", "Last Visit"])
    without_dates.to_csv(tmp_path / "no_dates.csv", index=False)
    blind = lr_auc(tmp_path / "no_dates.csv", write_config(tmp_path, "profile:\n  exclude: [Cancellation Date]\n"))
    assert read > blind + 0.1, (read, blind)  # the join date read as days since, not as 30102026


def test_labels_are_read_with_the_products_words(tmp_path):
    words = gym_table(tmp_path / "yes.csv")
    letters = gym_table(tmp_path / "y.csv", labels=("Y", "N"))
    preds = held_out(words)
    config = write_config(tmp_path)
    assert np.allclose(table_baseline(letters, "Churned", "Member No", preds, config),
                       table_baseline(words, "Churned", "Member No", preds, config))


def test_header_and_rows_split_into_the_same_number_of_fields(capsys):
    print_table([Figures("gym.csv (table)", tier_rates=dict.fromkeys(foreign.TIERS, 0.1),
                         tier_counts=dict.fromkeys(foreign.TIERS, 5))])
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert "p=0 or 1" in header
    assert len(header.split("|")) == len(row.split("|")) == 22


def test_keep_to_a_new_folder_is_created_and_holds_the_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(foreign, "run_cli", run_cli)  # the real entry point, in this process
    table = gym_table(tmp_path / "gym.csv", rows=200)
    keep = tmp_path / "not" / "yet"
    figs = main(["--table", str(table), "--label", "Churned", "--id", "Member No", "--keep", str(keep)])
    assert "date_format" in figs[0].error  # no config: the day-first dates are refused by train
    saved = json.loads((keep / "foreign.json").read_text())
    assert saved[0]["name"] == "gym.csv (table)" and saved[0]["error"] == figs[0].error


@pytest.mark.slow
def test_config_is_copied_into_the_home_and_read_by_every_step(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(foreign, "run_cli", run_cli)
    table, config = gym_table(tmp_path / "gym.csv"), write_config(tmp_path)
    keep = tmp_path / "new"
    [fig] = main(["--table", str(table), "--label", "Churned", "--id", "Member No", "--config", str(config),
                  "--keep", str(keep)])
    assert fig.error == "" and fig.leakage == "accepted" and fig.rows == 160
    assert (keep / "table" / "home" / "churnwatch.yaml").read_text() == CONFIG
    assert 0.7 < fig.independent_lr < 0.95  # the excluded cancellation date is not read
    lines = capsys.readouterr().out.splitlines()
    header, row = lines[:2]
    assert len(header.split("|")) == len(row.split("|"))
    # the figures over every customer (train --table --cross-validate 5), printed under the row
    assert fig.cross_validated.startswith("800 customers, 5 folds: ROC-AUC ")
    assert f"    cross-validated: {fig.cross_validated}" in lines


@pytest.mark.parametrize("args, words", [(["--config", "C"], "--config goes with --table"),
                                         (["--table", "T", "--config", "missing.yaml"], "does not exist")])
def test_config_out_of_place_or_missing_is_refused(tmp_path, capsys, args, words):
    args = [str(write_config(tmp_path)) if a == "C" else str(tmp_path / "t.csv") if a == "T" else a for a in args]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2 and words in capsys.readouterr().err


def test_an_event_log_folder_whose_config_points_elsewhere_is_read_from_there(tmp_path):
    """A probe's folder held churnwatch.yaml with ``data: ./exports``: the harness gave the folder itself to
    ``features`` ("required table 'subscriptions' not found") and printed a row of NaNs."""
    folder, home = tmp_path / "export", tmp_path / "run" / "home"
    (folder / "exports").mkdir(parents=True)
    (folder / "churnwatch.yaml").write_text("data: ./exports\nhorizon_days: 60\n", encoding="utf-8")
    assert foreign.tables_of(folder, home) == folder / "exports"
    assert yaml.safe_load((home / "churnwatch.yaml").read_text()) == {"data": str(folder / "exports"),
                                                                     "horizon_days": 60}
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "churnwatch.yaml").write_text("horizon_days: 60\n", encoding="utf-8")
    assert foreign.tables_of(plain, tmp_path / "other") == plain and not (tmp_path / "other").exists()


def test_a_step_that_fails_fails_the_run(tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/foreign.py", "--table", str(tmp_path / "missing.csv"),
                           "--label", "Churned", "--id", "Member No", "--keep", str(tmp_path / "k")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "error:" in done.stdout and "missing.csv" in done.stdout
