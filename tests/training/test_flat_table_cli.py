"""Flat tables are first class (issue 12, item 7) and leaks are refused (item 4), from the CLI.

``churnwatch``'s entry point runs in-process with its real argument parsing, error handling
and exit codes (one import of the stack instead of one per command), on a generated table of
a few hundred customers, with a real MLflow sqlite store and DuckDB store in a temp home.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from training.own_table import write_example_table


def flat(text: str) -> str:
    """Terminal text with wrapping and table borders flattened to single spaces."""
    return " ".join(text.replace("│", " ").replace("┃", " ").split())


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    return write_example_table(tmp_path_factory.mktemp("flat") / "customers.csv", rows=500, seed=4)


def test_table_model_train_promote_score_explain_report(tmp_path, table, cli):
    home = tmp_path / "home"
    trained = cli(home, "train", "--table", str(table), "--label", "Churn", "--id", "customer_id")
    assert trained.returncode == 0, trained.stderr
    out = flat(trained.stdout)
    assert "model vs baselines on the test rows (a random split of customers)" in out
    assert "churn by tier (test rows base rate" in out and "customers churned churn rate" in out
    assert "out-of-time" not in out and "accounts x dates" not in out
    assert "next: churnwatch promote --version 1, then churnwatch score --table FILE" in out

    promoted = cli(home, "promote")
    assert promoted.returncode == 0, promoted.stderr
    assert "version 1: promoted" in flat(promoted.stdout)

    evaluated = cli(home, "evaluate")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "model version 1: ROC-AUC" in flat(evaluated.stdout) and "customers churned" in flat(evaluated.stdout)

    # today's customers: no label column, columns in another order
    current = pd.read_csv(table, dtype=str).drop(columns=["Churn"]).iloc[:120, ::-1]
    current_path = tmp_path / "current.csv"
    current.to_csv(current_path, index=False)
    scored = cli(home, "score", "--table", str(current_path), "--as-of", "2026-03-31")
    assert scored.returncode == 0, scored.stderr
    assert "scored 120 customers as of 2026-03-31 with model version 1" in flat(scored.stdout)
    with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:
        history = con.execute("SELECT account_id, as_of, churn_probability, tier, model_version "
                              "FROM score_history").df()
    assert len(history) == 120 and set(history["account_id"]) == set(current["customer_id"])
    assert (history["model_version"] == "1").all() and history["as_of"].astype(str).eq("2026-03-31").all()
    assert history["churn_probability"].between(0, 1).all()
    assert "marked as churned already" not in flat(scored.stdout + scored.stderr)  # no label column: nothing said

    # the training file itself, label column and all: its churners are scored, and said to be gone already
    again = cli(home, "score", "--table", str(table), "--as-of", "2026-03-30")
    assert again.returncode == 0, again.stderr
    with duckdb.connect(str(home / "store.duckdb"), read_only=True) as con:
        tiers = con.execute("SELECT account_id, tier FROM score_history WHERE as_of = '2026-03-30'").df()
    labels = pd.read_csv(table, dtype=str).set_index("customer_id")["Churn"].eq("Yes")
    gone = labels[labels].index
    high = tiers.loc[tiers["tier"] == "high_risk", "account_id"]
    assert len(tiers) == 500  # nothing left out
    assert (f"the file has the training label column 'Churn': {len(gone):,} of 500 customers are marked as churned "
            f"already ({high.isin(gone).sum():,} of the {len(high):,} high risk ones); they are scored like the "
            "others: leave them out of a call list, or score a file of current customers only") \
        in flat(again.stdout + again.stderr)

    top = history.sort_values("churn_probability").iloc[-1]["account_id"]
    explained = cli(home, "explain", top)
    assert explained.returncode == 0, explained.stderr
    text = flat(explained.stdout)
    assert top in text and "as of 2026-03-31" in text and "model version 1" in text
    assert any(f"{c} = " in text for c in ("contract", "tenure_months", "monthly_charges", "support_calls"))
    # a table has no MRR column: said so, not shown as an unknown amount ("MRR -")
    assert "no MRR column (flat table)" in text and "MRR -" not in text and "expected MRR loss" not in text
    zh = flat(cli(home, "explain", top, "--lang", "zh-CN").stdout)
    assert "无 MRR 列（表格数据）" in zh and "MRR -" not in zh and "预期收入损失" not in zh
    assert "月经" not in zh  # "(无)月经常性收入" read as "(no) menstruation": Chinese texts say MRR

    report = cli(home, "report", "--top", "2", "--out", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr
    assert "2 customer pages, 2 SHAP waterfalls" in flat(report.stdout)
    assert (tmp_path / "report.html").stat().st_size > 10_000

    wrong = cli(home, "score", "--data", str(tmp_path))
    assert wrong.returncode == 2 and "score --table FILE" in flat(wrong.stderr)

    missing = tmp_path / "missing.csv"
    current.drop(columns=["contract"]).to_csv(missing, index=False)
    bad = cli(home, "score", "--table", str(missing))
    assert bad.returncode == 2 and "contract" in bad.stderr and "Traceback" not in bad.stderr


@pytest.fixture(scope="module")
def leaky_table(tmp_path_factory, table) -> Path:
    """The table plus what a cancellation export adds: a cancellation date only churners have."""
    frame = pd.read_csv(table, dtype=str)
    rng = np.random.default_rng(5)
    churned = frame["Churn"] == "Yes"
    frame["days_since_cancel_request"] = np.where(churned, rng.integers(1, 40, len(frame)).astype(str), "")
    path = tmp_path_factory.mktemp("leaky") / "customers.csv"
    frame.to_csv(path, index=False)
    return path


def test_leaky_column_is_refused_then_allowed_but_never_auto_promoted(tmp_path, leaky_table, cli):
    home = tmp_path / "home"
    args = ("train", "--table", str(leaky_table), "--label", "Churn", "--id", "customer_id")
    refused = cli(home, *args)
    assert refused.returncode == 2
    message = flat(refused.stderr)
    assert "label leakage suspected, nothing registered: feature 'days_since_cancel_request'" in message
    assert "--allow-leaky-feature days_since_cancel_request" in message and "Traceback" not in message

    allowed = cli(home, *args, "--allow-leaky-feature", "days_since_cancel_request")
    assert allowed.returncode == 0, allowed.stderr
    assert "never promoted automatically" in flat(allowed.stdout)
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    version = client.get_model_version("churnwatch", "1")
    assert version.tags["churnwatch.leaky_features"] == "days_since_cancel_request"
    run = client.get_run(version.run_id)
    assert run.data.tags["churnwatch.leaky_features"] == "days_since_cancel_request"

    refused_promotion = cli(home, "promote")
    assert refused_promotion.returncode == 3, refused_promotion.stderr
    text = flat(refused_promotion.stdout)
    assert "version 1: not promoted" in text and "--allow-leaky-feature days_since_cancel_request" in text
    with pytest.raises(Exception):  # noqa: B017 - no champion alias was set
        client.get_model_version_by_alias("churnwatch", "champion")

    forced = cli(home, "promote", "--force", "--reason", "checked: the column is known in advance")
    assert "version 1: promoted" in flat(forced.stdout)

    # the column left out after all: the new version cannot be compared with a champion that reads it (exit 3,
    # said as such, not as the candidate's data lacking it), and forcing says why, not "no champion yet"
    (home / "churnwatch.yaml").write_text("profile:\n  exclude: [days_since_cancel_request]\n", encoding="utf-8")
    assert cli(home, *args).returncode == 0
    apart = cli(home, "promote")
    said = flat(apart.stdout)
    assert apart.returncode == 3 and "version 2: not promoted (champion was 1)" in said
    assert "the champion (version 1) reads column(s) this version's test rows do not have " \
           "(days_since_cancel_request), so the two cannot be compared" in said
    swapped = flat(cli(home, "promote", "--force", "--reason", "v1 read a leak").stdout)
    assert "version 2: promoted (champion was 1): forced: v1 read a leak (the champion (version 1) reads" in swapped
    assert "no champion yet" not in swapped


def test_a_column_nearly_as_telling_as_a_leak_is_said_at_train_and_promote(tmp_path, table, cli):
    """Probe p50: a vendor's risk score written after the fact, under an innocent name and just under the refusal
    limit alone (0.947), trained and was promoted without a word."""
    frame = pd.read_csv(table, dtype=str)
    rng = np.random.default_rng(50)
    churned = (frame["Churn"] == "Yes").to_numpy()
    frame["Engagement Risk Score"] = np.round(50 + 10 * (rng.normal(size=len(frame)) + 2.2 * churned), 1)
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    home = tmp_path / "home"
    trained = cli(home, "train", "--table", str(path), "--label", "Churn", "--id", "customer_id")
    assert trained.returncode == 0, trained.stderr
    said = flat(trained.stdout)
    assert "warning: possible leak: column 'Engagement Risk Score' predicts churn on its own with ROC-AUC 0.9" in said
    assert ("(refused from 0.95): a column written from the outcome (a vendor's churn or risk score computed "
            "later") in said
    promoted = cli(home, "promote")
    assert "possible leak: column 'Engagement Risk Score'" in flat(promoted.stdout + promoted.stderr)
