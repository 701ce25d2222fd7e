"""Foreign-data acceptance harness (issue 12): the whole CLI path on exports we did not tune on.

For each generated set — the consumer product's 12-month event log (``demo/consumer.py``),
the flat Telco-like table (``demo/flat.py``) and the Stripe-shaped export under both
mappings (``demo/stripe.py``), or any export folder or flat table given (``--event-log``,
``--table``: the README's streaming-log and Telco rows are files written by
``tests/foreign/shapes.py``) — it runs ``churnwatch`` as a user would (``demo-data``,
``features``, ``train``, ``promote``, ``score``, ``explain``) in a fresh home folder and
prints one row per set: rows, base rate, ROC-AUC of the chosen model and of each baseline
of the run, an independent logistic regression fitted here (with the paired,
account-clustered bootstrap 95% interval of the ROC-AUC difference), ECE and ECE / base
rate, the debiased ECE with its bootstrap 95% interval, the ECE a perfectly calibrated model
would show on the same rows by chance, the mean probability against the base rate
(calibration-in-the-large) and the ECE left once the probabilities are shifted to that base rate,
and whether ECE <= min(0.02, 0.1 x base rate) is met,
not met or not measurable (``training.evaluation``), the count of probabilities exactly 0
or 1, churn and test rows per tier (and whether churn rises strictly), the run's own
chosen-model-minus-best-baseline ROC-AUC with its interval and verdict, the leakage verdict and
the wall time; under a flat table's row, its figures cross-validated over all customers (``train
--table --cross-validate 5``: ROC-AUC against the logistic regression, ECE and churn per tier).

Run (from the repository root; minutes at acceptance size on 2 cores)::

    python benchmarks/foreign.py                    # acceptance sizes: 4,000 / 7,000 / 800
    python benchmarks/foreign.py --size small       # 600 / 2,000 / 400, about a minute
    python benchmarks/foreign.py --only demo        # the B2B demo's calibration at 12,000 accounts (about 10 minutes)
    python benchmarks/foreign.py --only consumer --keep /tmp/foreign   # keep the homes
    python benchmarks/foreign.py --only consumer --months 6 [--seed 11]  # a shorter consumer log
    python benchmarks/foreign.py --event-log EXPORT_DIR        # any export folder with its churnwatch.yaml
    python benchmarks/foreign.py --table T.csv --label Churn --id customerID   # any flat table
    python benchmarks/foreign.py --table T.csv --label Churned --id "Member No" --config churnwatch.yaml

The tests in ``tests/foreign/`` use the same functions on small sets.

Over 400 lines: one harness — the sets' CLI paths, the independent baselines fitted beside them
and the figures' table are read together.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the package, not benchmarks/training.py, is `training`

from core.errors import ConfigError  # noqa: E402
from core.settings import CONFIG_FILE_NAME, Settings, load_settings  # noqa: E402
from core.store import HISTORY, SNAPSHOTS, connect  # noqa: E402
from features.profile import latest_at_export_name  # noqa: E402
from training.evaluation import ece, ece_estimates, ece_verdict, shifted_to_base_rate  # noqa: E402
from training.own_table import parse_label  # noqa: E402

TIERS = ("healthy", "low_risk", "medium_risk", "high_risk")
SIZES = {"acceptance": {"consumer": 4000, "flat": 7000, "stripe": 800, "demo": 12000},
         "small": {"consumer": 600, "flat": 2000, "stripe": 400, "demo": 2000}}
KEYS = ("account_id", "as_of", "churn_label", "labelled")
#: Folds of a flat table's cross-validated figures (``train --table --cross-validate``).
CV_FOLDS = 5


def run_cli(*args: str, home: Path | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    """``python -m churnwatch ARGS [--home HOME]`` with this checkout first on the path."""
    cmd = [sys.executable, "-m", "churnwatch", *args, *(["--home", str(home)] if home else [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def check(r: subprocess.CompletedProcess, step: str) -> subprocess.CompletedProcess:
    """Raise with the step's stderr tail when it did not exit 0."""
    if r.returncode != 0:
        raise RuntimeError(f"{step} exited {r.returncode}: {(r.stderr or r.stdout)[-1500:]}")
    return r


def newest(home: Path, pattern: str) -> Path:
    """The most recently written file matching ``pattern`` under ``home``."""
    files = sorted(home.rglob(pattern), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no {pattern} under {home}")
    return files[-1]


def paired_bootstrap(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, groups: np.ndarray | None = None,
                     n: int = 500, seed: int = 0) -> tuple[float, float, float]:
    """ROC-AUC(a) - ROC-AUC(b) on the same rows and its 95% bootstrap interval; rows of one
    group (an account seen on several as-of dates) are resampled together."""
    rng = np.random.default_rng(seed)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    codes, members = np.unique(groups, return_inverse=True)
    by_group = np.split(np.argsort(members, kind="stable"), np.cumsum(np.bincount(members))[:-1])
    diffs = []
    for _ in range(n):
        idx = np.concatenate([by_group[g] for g in rng.integers(0, codes.size, codes.size)])
        if 0 < y[idx].sum() < idx.size:
            diffs.append(roc_auc_score(y[idx], p_a[idx]) - roc_auc_score(y[idx], p_b[idx]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(roc_auc_score(y, p_a) - roc_auc_score(y, p_b)), float(lo), float(hi)


def _design(frame: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Numbers (log1p of non-negative ones, median-imputed, with a missing flag) and one-hot
    categories of at most 50 values: a plain logistic regression's input."""
    parts = []
    for c in frame.columns:
        s = frame[c]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            s = s.astype("float64")
            if s.notna().any() and (s.dropna() >= 0).all():
                s = np.log1p(s)
            parts.append(s.fillna(s.median() if s.notna().any() else 0).rename(c).to_frame())
            if s.isna().any():
                parts.append(s.isna().astype(float).rename(f"{c}__missing").to_frame())
        elif s.nunique() <= 50:
            parts.append(pd.get_dummies(s.astype("object").fillna("(missing)"), prefix=c, dtype=float))
    X = pd.concat(parts, axis=1)
    return X if columns is None else X.reindex(columns=columns, fill_value=0.0)


def logistic_predictions(train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    """An independent logistic regression (standardised design, C=0.5) fitted on ``train``."""
    X = _design(train)
    X = X.loc[:, X.std() > 0]
    mean, sd = X.mean(), X.std()
    with threadpool_limits(limits=1, user_api="blas"):  # tens of columns: one thread is faster
        model = LogisticRegression(C=0.5, max_iter=3000).fit((X - mean) / sd, y)
    Xt = (_design(test, list(X.columns)) - mean) / sd
    return model.predict_proba(Xt.fillna(0))[:, 1]


def consumer_profile(data: Path) -> pd.DataFrame:
    """The consumer export's own account columns (age from ``date_of_birth``), by account."""
    acc = pd.read_parquet(data / "accounts.parquet")
    return acc.set_index("account_id")[["date_of_birth", "acquisition_source", "household_size"]]


def snapshot_baseline(store: Path, preds: pd.DataFrame, purge_days: int,
                      profile: pd.DataFrame | None = None) -> np.ndarray:
    """Independent logistic regression on the store's labelled snapshots: trained on as-of
    dates ending ``purge_days`` before the first test date, predicting the test rows."""
    with connect(Path(store), read_only=True) as con:
        rows = con.execute(f"SELECT * FROM {SNAPSHOTS} WHERE labelled").df()
    rows["as_of"] = pd.to_datetime(rows["as_of"])
    if profile is not None:
        joined = profile.reindex(rows["account_id"]).reset_index(drop=True)
        age = (rows["as_of"] - pd.to_datetime(joined["date_of_birth"])).dt.days / 365.25
        rows = rows.assign(age_years=age.to_numpy(), household=joined["household_size"].to_numpy(),
                           source=joined["acquisition_source"].to_numpy())
    first_test = pd.to_datetime(preds["as_of"]).min()
    train = rows[rows["as_of"] <= first_test - pd.Timedelta(days=purge_days)]
    if train["churn_label"].nunique() < 2:  # too short for a purge gap (account-holdout): other accounts' dates
        train = rows[(rows["as_of"] < first_test) & ~rows["account_id"].isin(preds["account_id"])]
    keys = preds[["account_id", "as_of"]].assign(as_of=lambda d: pd.to_datetime(d["as_of"]))
    test = keys.merge(rows, on=["account_id", "as_of"], how="left")
    # features blank on over half the training rows are left out: a short export's 30-day changes are
    # unknown on its first as-of dates (the previous window has under two weeks of data), which are all
    # a purged span may hold (a 9-month log: 3 dates, 99% blank); their missing flag told the few accounts
    # that began after the data start apart there, and applied to every test row it ranked them at 0.660
    # instead of 0.780 (a flat table's blank-unless-churned column is its signal: table_baseline keeps it)
    feats = [c for c in rows.columns if c not in KEYS and train[c].isna().mean() <= 0.5]
    return logistic_predictions(train[feats], train["churn_label"].to_numpy(int), test[feats])


def _analyst_numbers(df: pd.DataFrame, comma: bool, keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """Text columns read as numbers the way an analyst would in pandas, independently of churnwatch's
    reader: everything but digits, signs and separators dropped ("$1,234.50", "1.234,50 EUR", "12%"),
    then the thousands separator removed; kept when at least 95% of the non-blank values parse. The
    columns ``keep`` (label, id) are left as they are."""
    out = df.copy()
    for c in out.columns:
        if c in keep or not pd.api.types.is_object_dtype(out[c]):
            continue
        text = out[c].astype("string").str.replace(r"[^0-9,.\-]", "", regex=True)
        text = (text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False) if comma
                else text.str.replace(",", "", regex=False))
        numbers = pd.to_numeric(text.replace({"": None, "-": None}), errors="coerce")
        filled = out[c].notna() & ~out[c].astype("string").str.strip().isin(["", "N/A", "NA", "-"])
        if filled.any() and numbers[filled].notna().mean() >= 0.95:
            out[c] = numbers.astype("float64")
    return out


def analyst_dates(df: pd.DataFrame, date_format: str | None, keep: tuple[str, ...] = ()) -> list[str]:
    """Text (or whole-number) columns of which at least 95% of the non-blank values read as dates, ISO
    (``2026-10-30``, with or without a time) or in the config's ``date_format`` (``%d/%m/%Y``: 30/10/2026),
    replaced in place by the days before the table's latest date (of every date column): an analyst's
    "days since", not 30102026 as a number. Returns the date columns. The columns ``keep`` are left."""
    dates: dict[str, pd.Series] = {}
    for c in df.columns:
        if c in keep or not (pd.api.types.is_object_dtype(df[c]) or pd.api.types.is_integer_dtype(df[c])):
            continue
        text = df[c].astype("string").str.strip()
        filled = text.notna() & ~text.str.lower().isin(["", "na", "n/a", "nan", "null", "none", "-"])
        if not filled.any():
            continue
        iso = pd.to_datetime(text.where(text.str.match(r"\d{4}-\d{1,2}-\d{1,2}(?:[ T]|$)")), format="ISO8601",
                             errors="coerce", utc=True)
        if date_format:
            iso = iso.fillna(pd.to_datetime(text.where(filled), format=date_format, errors="coerce", utc=True))
        if iso[filled].notna().mean() >= 0.95:
            dates[c] = iso.dt.tz_convert(None)
    if dates:
        latest = max(d.max() for d in dates.values())
        for c, d in dates.items():
            df[c] = (latest - d).dt.days.astype("float64")
    return list(dates)


def table_baseline(path: Path, label: str, id_col: str, preds: pd.DataFrame, config: Path | None = None) -> np.ndarray:
    """Independent logistic regression on a flat table: fitted on the rows not in the test rows.

    It reads the file with its own pandas code, a check on the product's reader and model, but the
    columns the user meant: ``config`` (the run's ``churnwatch.yaml``) gives ``profile.exclude`` (columns
    left out), ``profile.columns.<c>.kind: category`` (a code read as text) and ``date_format``. The
    file's separator is sniffed by pandas; a ``;`` file is taken to use a decimal comma (a European
    spreadsheet); dates become days before the table's latest date (``analyst_dates``), numbers
    written as text are read by ``_analyst_numbers``, other ``*_date`` columns are left out. The label
    is read by the product's ``training.own_table.parse_label`` (the same words, one definition: a
    label the product reads differently would judge a different target, not check the model)."""
    settings = load_settings(config) if config else Settings()
    df = pd.read_csv(path, dtype={id_col: str}, sep=None, engine="python", encoding="utf-8-sig")
    df.columns = [str(c).strip() for c in df.columns]
    absent = [c for c in settings.profile.exclude if c not in df.columns]
    if absent:
        raise ValueError(f"{config}: profile.exclude names column(s) {absent} that {path} does not have")
    df = df.drop(columns=settings.profile.exclude)
    codes = tuple(c for c, told in settings.profile.columns.items() if told.kind == "category" and c in df)
    df[list(codes)] = df[list(codes)].astype("string").astype("object")
    with path.open(encoding="utf-8-sig") as fh:
        header = fh.readline()
    dates = analyst_dates(df, settings.date_format, keep=(label, id_col, *codes))
    df = _analyst_numbers(df, comma=header.count(";") > header.count(","), keep=(label, id_col, *codes))
    y = parse_label(df[label], label)
    test = df[id_col].isin(preds["account_id"].astype(str)).to_numpy()
    feats = df.drop(columns=[label, id_col]).select_dtypes(exclude="datetime")
    feats = feats.drop(columns=[c for c in feats if c.endswith("_date") and c not in dates])
    # a latest date (`Last Contact Date`) is left out unless profile.columns keeps it, as the product does
    feats = feats.drop(columns=[c for c in dates if latest_at_export_name(c) and c not in settings.profile.columns])
    p = logistic_predictions(feats[~test], y[~test], feats[test])
    return pd.Series(p, index=df.loc[test, id_col]).reindex(preds["account_id"].astype(str)).to_numpy()


@dataclass
class Figures:
    """One set's row of the acceptance table."""

    name: str
    rows: int = 0
    base_rate: float = float("nan")
    model: str = ""
    roc_auc: float = float("nan")
    baselines: dict[str, float] = field(default_factory=dict)
    independent_lr: float = float("nan")
    lr_diff_ci: tuple[float, float, float] = (float("nan"),) * 3
    ece: float = float("nan")
    ece_debiased: tuple[float, float, float] = (float("nan"),) * 3  # estimate, 95% interval
    ece_noise: float = float("nan")  # ECE a perfectly calibrated model shows on these rows
    ece_verdict: str = "-"  # ECE <= min(0.02, 0.1 x base rate): met / not met / not measurable
    mean_p: float = float("nan")  # mean probability of the test rows, against base_rate
    ece_level: float = float("nan")  # ECE with the probabilities shifted (log-odds) to base_rate
    extreme_p: int = -1  # probabilities exactly 0 or 1 (test rows + score history)
    tier_rates: dict[str, float | None] = field(default_factory=dict)
    tier_counts: dict[str, int] = field(default_factory=dict)  # test rows per tier
    tiers_rising: bool = False
    vs_best: str = "-"  # the run's own: model - best baseline, 95% interval, "not below beyond it" verdict
    leakage: str = "-"
    cross_validated: str = ""  # a flat table's figures over all customers (train --cross-validate 5)
    seconds: float = 0.0
    error: str = ""

    @property
    def ece_over_base(self) -> float:
        return self.ece / self.base_rate if self.base_rate else float("nan")


def comparison(home: Path) -> tuple[str, float, dict[str, float]]:
    """The run's own table: (chosen model's name, its ROC-AUC, {baseline: ROC-AUC}): the row marked
    ``registered`` is the model, the others are baselines."""
    table = pd.read_csv(newest(home / "reports", "model_vs_baselines.csv"))
    base = ~table["registered"].astype(bool)
    chosen = table[~base].iloc[0]
    return str(chosen["model"]), float(chosen["roc_auc"]), dict(zip(table.loc[base, "model"],
                                                                    table.loc[base, "roc_auc"], strict=True))


def test_figures(fig: Figures, home: Path) -> pd.DataFrame:
    """Fill the figures read from the newest bundle's test predictions; returns them."""
    preds = pd.read_csv(newest(home, "test_predictions.csv"), dtype={"account_id": str})
    y, p = preds["churn_label"].to_numpy(int), preds["churn_probability"].to_numpy(float)
    fig.rows, fig.base_rate, fig.ece = len(preds), float(y.mean()), ece(y, p)
    est = ece_estimates(y, p, groups=preds["account_id"].to_numpy())
    fig.ece_debiased = (est["ece_debiased"], est["ece_debiased_lo"], est["ece_debiased_hi"])
    fig.ece_noise = est["ece_noise"]
    fig.ece_verdict = ece_verdict(est, fig.base_rate)[0]
    fig.mean_p, fig.ece_level = float(p.mean()), ece(y, shifted_to_base_rate(y, p))
    fig.extreme_p = int(((p <= 0) | (p >= 1)).sum())
    fig.model, fig.roc_auc, fig.baselines = comparison(home)
    meta = json.loads(newest(home, "bundle.json").read_text())
    training = meta.get("training", {})
    best = meta.get("metrics", {}).get("vs_baselines", {}).get("best baseline")
    if best:
        fig.vs_best = (f"{best['baseline']} {best['roc_auc_diff']:+.3f} [{best['roc_auc_lo']:+.3f}, "
                       f"{best['roc_auc_hi']:+.3f}] {best['verdict']} ({best.get('standing', '')})")
    if "selection" in training:  # the candidate chosen on validation and the calibration that won
        fig.model = f"{training['selection'].get('chosen')}, {training.get('calibration', {}).get('method')}"
    rates = {t: (float(y[preds["tier"] == t].mean()) if (preds["tier"] == t).any() else None) for t in TIERS}
    fig.tier_rates = rates
    fig.tier_counts = {t: int((preds["tier"] == t).sum()) for t in TIERS}
    seen = [r for r in rates.values() if r is not None]
    fig.tiers_rising = len(seen) == len(TIERS) and all(a < b for a, b in zip(seen, seen[1:], strict=False))
    return preds


def score_history_extremes(store: Path) -> tuple[int, str]:
    """Scores of exactly 0 or 1 in the score history, and the riskiest account of the latest date."""
    with connect(Path(store), read_only=True) as con:
        extreme = con.execute(f"SELECT count(*) FROM {HISTORY} WHERE churn_probability <= 0 "
                              "OR churn_probability >= 1").fetchone()[0]
        top = con.execute(f"SELECT account_id FROM {HISTORY} WHERE as_of = (SELECT max(as_of) FROM "
                          f"{HISTORY}) ORDER BY churn_probability DESC, account_id LIMIT 1").fetchone()[0]
    return int(extreme), str(top)


def leakage_verdict(r: subprocess.CompletedProcess) -> str:
    """'refused: <message>' when training stopped on a leakage check, 'accepted' when it
    trained, '-' when it failed for another reason."""
    if r.returncode == 0:
        return "accepted"
    message = (r.stderr or r.stdout).strip()
    if "leak" in message.lower():  # the error line, not the progress lines before it
        lines = [line for line in message.splitlines() if "leak" in line.lower()]
        return "refused: " + " ".join((lines[-1] if lines else message).split())[:120]
    return "-"


def _with_lr(fig: Figures, preds: pd.DataFrame, p_lr: np.ndarray) -> None:
    y = preds["churn_label"].to_numpy(int)
    fig.independent_lr = float(roc_auc_score(y, p_lr))
    fig.lr_diff_ci = paired_bootstrap(y, preds["churn_probability"].to_numpy(float), p_lr,
                                      preds["account_id"].to_numpy())


def event_log_path(work: Path, name: str, data: Path, profile: pd.DataFrame | None,
                   extra_train: tuple[str, ...] = ()) -> Figures:
    """features -> train -> promote -> score -> explain on one event-log folder, in ``work/home``."""
    fig, t0, home = Figures(name), time.perf_counter(), work / "home"
    try:
        data = tables_of(data, home)
        check(run_cli("features", "--data", str(data), home=home), "features")
        r = run_cli("train", *extra_train, home=home)
        fig.leakage = leakage_verdict(r)
        check(r, "train")
        preds = test_figures(fig, home)
        horizon = json.loads(newest(home, "bundle.json").read_text())
        purge = int(horizon.get("horizon_days", 60)) + int(horizon.get("grace_days", 30))
        _with_lr(fig, preds, snapshot_baseline(home / "store.duckdb", preds, purge, profile))
        promote_score_explain(fig, home, "--data", str(data))
    except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired) as exc:
        fig.error = str(exc)[:300]
    fig.seconds = time.perf_counter() - t0
    return fig


def tables_of(folder: Path, home: Path) -> Path:
    """The tables of an export folder. When its churnwatch.yaml's ``data:`` points elsewhere
    (``data: ./exports``), the file goes into the run's home with ``data`` made absolute, where a
    user keeps a config beside the store, and the folder it names is returned; else the folder
    itself (the CLI reads a data folder's own churnwatch.yaml)."""
    config = folder / CONFIG_FILE_NAME
    data = load_settings(config).data if config.exists() else None  # resolved against the file's folder
    if not data or Path(data).resolve() == folder.resolve():
        return folder
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    home.mkdir(parents=True, exist_ok=True)
    (home / CONFIG_FILE_NAME).write_text(yaml.safe_dump({**raw, "data": str(data)}), encoding="utf-8")
    return Path(data)


def promote_score_explain(fig: Figures, home: Path, *score_args: str) -> None:
    """The steps after training, as a user runs them: promote, score (``score_args``: the
    source), count probabilities of exactly 0 or 1, explain the riskiest account."""
    check(run_cli("promote", home=home), "promote")
    check(run_cli("score", *score_args, home=home), "score " + " ".join(score_args[:1]))
    extreme, top = score_history_extremes(home / "store.duckdb")
    fig.extreme_p += extreme
    check(run_cli("explain", top, home=home), "explain")


def run_consumer(work: Path, accounts: int, seed: int = 11, months: int | None = None) -> Figures:
    """The consumer log (``months`` of history: the generator's default 12 when ``None``)."""
    data = work / "data"
    length = ("--months", str(months)) if months else ()
    check(run_cli("demo-data", "--kind", "consumer", "--out", str(data), "--accounts", str(accounts),
                  "--seed", str(seed), *length), "demo-data")
    name = f"consumer ({accounts:,} accounts{f', {months} months' if months else ''}, seed {seed})"
    return event_log_path(work, name, data, consumer_profile(data))


def run_demo(work: Path, accounts: int, seed: int = 7) -> Figures:
    """The B2B demo's generator at ``accounts`` (only with ``--only demo``: at the demo's 2,000 accounts the
    calibration bar is below the ECE chance alone gives, so it is judged here on 12,000)."""
    data, name, t0 = work / "data", f"demo ({accounts:,} accounts, seed {seed})", time.perf_counter()
    try:
        check(run_cli("demo-data", "--out", str(data), "--accounts", str(accounts), "--seed", str(seed)), "demo-data")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return Figures(name, error=str(exc)[:300], seconds=time.perf_counter() - t0)
    return event_log_path(work, name, data, None)


def run_stripe(work: Path, accounts: int, mapping: str, seed: int = 23) -> Figures:
    out = work / "data"
    if not (out / mapping).exists():
        check(run_cli("demo-data", "--kind", "stripe", "--out", str(out), "--accounts", str(accounts),
                      "--seed", str(seed)), "demo-data")
    return event_log_path(work / mapping, f"stripe {mapping} ({accounts:,})", out / mapping, None)


def run_flat(work: Path, rows: int, seed: int = 5) -> Figures:
    t0 = time.perf_counter()
    try:
        check(run_cli("demo-data", "--kind", "flat", "--out", str(work), "--accounts", str(rows),
                      "--seed", str(seed)), "demo-data")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return Figures(f"flat table ({rows:,} customers)", error=str(exc)[:300], seconds=time.perf_counter() - t0)
    return run_flat_table(work, f"flat table ({rows:,} customers)", work / "churn_table.csv", "Churn", "customer_id")


def run_flat_table(work: Path, name: str, table: Path, label: str, id_col: str,
                   config: Path | None = None) -> Figures:
    """train --table -> promote -> score --table -> explain on one flat table, in ``work/home``.

    ``config``: a ``churnwatch.yaml`` (``date_format``, ``profile``) copied into the home, where every
    step reads it as a user's home's own; the independent logistic regression reads the home's too."""
    fig, t0, home = Figures(name), time.perf_counter(), work / "home"
    if config is not None:
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config, home / CONFIG_FILE_NAME)
    own = home / CONFIG_FILE_NAME
    try:
        r = run_cli("train", "--table", str(table), "--label", label, "--id", id_col, "--cross-validate",
                    str(CV_FOLDS), home=home)
        fig.leakage = leakage_verdict(r)
        check(r, "train --table")
        preds = test_figures(fig, home)
        fig.cross_validated = cross_validated(home)
        _with_lr(fig, preds, table_baseline(table, label, id_col, preds, own if own.exists() else None))
        promote_score_explain(fig, home, "--table", str(table))
    except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired) as exc:
        fig.error = str(exc)[:300]
    fig.seconds = time.perf_counter() - t0
    return fig


def cross_validated(home: Path) -> str:
    """The newest bundle's cross-validated figures (``training.table_cv``) as one line, "" without them."""
    cv = json.loads(newest(home, "bundle.json").read_text()).get("metrics", {}).get("cross_validation")
    if not cv:
        return ""
    d = cv["vs_logistic"]
    tiers = "/".join("-" if t["churn_rate"] is None else f"{t['churn_rate']:.1%}" for t in cv["per_tier"].values())
    return (f"{cv['n_rows']:,} customers, {cv['folds']} folds: ROC-AUC {cv['roc_auc']:.3f}, logistic "
            f"{cv['logistic_roc_auc']:.3f}, model - logistic {d['roc_auc_diff']:+.3f} [{d['roc_auc_lo']:+.3f}, "
            f"{d['roc_auc_hi']:+.3f}] {d['verdict']}; ECE {cv['ece']:.4f} (debiased {cv['ece_debiased']:.4f}, noise "
            f"{cv['ece_noise']:.4f}; target {cv['ece_target']:.4f}: {cv['ece_verdict']}); mean p "
            f"{cv['mean_predicted']:.2%} vs {cv['base_rate']:.2%}; churn per tier {tiers}")


def _fmt(x: float) -> str:
    return "-" if x != x else f"{x:.3f}"


def print_table(figs: list[Figures]) -> None:
    head = ("set", "rows", "base", "model", "ROC-AUC", "baselines", "indep. LR", "diff [95% CI]", "ECE",
            "ECE/base", "debiased ECE [95% CI]", "noise", "mean p",
            "ECE at base rate", "ECE target", "p=0 or 1", "churn per tier (healthy..high)",
            "rows per tier", "rising", "vs best baseline (run's own)", "leakage", "s")
    print(" | ".join(head))
    for f in figs:
        tiers = "/".join("-" if r is None else f"{r:.1%}" for r in f.tier_rates.values())
        d, lo, hi = f.lr_diff_ci
        print(" | ".join([f.name, f"{f.rows:,}", f"{f.base_rate:.1%}", f.model, _fmt(f.roc_auc),
                          ", ".join(f"{k} {_fmt(v)}" for k, v in f.baselines.items()), _fmt(f.independent_lr),
                          f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]", _fmt(f.ece), _fmt(f.ece_over_base),
                          "{} [{}, {}]".format(*map(_fmt, f.ece_debiased)), _fmt(f.ece_noise), f"{f.mean_p:.2%}",
                          _fmt(f.ece_level), f.ece_verdict,
                          str(f.extreme_p), tiers, "/".join(str(n) for n in f.tier_counts.values()),
                          str(f.tiers_rising), f.vs_best, f.leakage, f"{f.seconds:.0f}"]))
        if f.cross_validated:
            print(f"    cross-validated: {f.cross_validated}")
        if f.error:
            print(f"    error: {f.error}")


def main(argv: list[str] | None = None) -> list[Figures]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="acceptance")
    ap.add_argument("--only", choices=["consumer", "flat", "stripe", "demo"], action="append",
                    help="one set (repeatable); demo (the B2B demo at 12,000 accounts, 2,000 with --size small) "
                    "only when named")
    ap.add_argument("--event-log", type=Path, action="append", default=[],
                    help="an export folder with its churnwatch.yaml, run as the generated logs are (repeatable)")
    ap.add_argument("--table", type=Path, help="a flat table (CSV), run as the generated one is; with --label, --id")
    ap.add_argument("--label", default="Churn", help="--table's label column (default Churn)")
    ap.add_argument("--id", default="customer_id", help="--table's id column (default customer_id)")
    ap.add_argument("--config", type=Path, help="--table's churnwatch.yaml (date_format, profile: exclude), "
                    "copied into the run's home as a user's own")
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    ap.add_argument("--months", type=int, help="history of the consumer log (default: the generator's 12)")
    ap.add_argument("--seed", type=int, default=11, help="seed of the consumer log (default 11)")
    args = ap.parse_args(argv)
    if args.config and not args.table:
        ap.error("--config goes with --table (an --event-log folder carries its own churnwatch.yaml)")
    if args.config:
        try:
            load_settings(args.config)
        except ConfigError as exc:
            ap.error(f"--config: {exc}")
    own = bool(args.event_log or args.table)  # a user's own exports: the generated sets only with --only
    sizes, chosen = SIZES[args.size], args.only or ([] if own else ["consumer", "flat", "stripe"])
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        figs = []
        if "consumer" in chosen:
            figs.append(run_consumer(work / "consumer", sizes["consumer"], args.seed, args.months))
        if "flat" in chosen:
            figs.append(run_flat(work / "flat", sizes["flat"]))
        if "stripe" in chosen:
            figs += [run_stripe(work / "stripe", sizes["stripe"], m) for m in ("naive", "correct")]
        if "demo" in chosen:
            figs.append(run_demo(work / "demo", sizes["demo"]))
        for k, folder in enumerate(args.event_log):
            figs.append(event_log_path(work / f"event-log-{k}", f"{folder.name} (event log)", folder.resolve(), None))
        if args.table:
            figs.append(run_flat_table(work / "table", f"{args.table.name} (table)", args.table.resolve(),
                                       args.label, args.id, args.config))
        print_table(figs)
        (work / "foreign.json").write_text(json.dumps([asdict(f) for f in figs], indent=2, default=str))
    return figs


if __name__ == "__main__":
    sys.exit(1 if any(f.error for f in main()) else 0)  # a step that failed fails the run
