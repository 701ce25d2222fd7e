"""The demo's plan and its library steps (DESIGN §8): a home folder with demo data and a config,
the scoring dates, the drift date and the account to suggest at the end.

``churnwatch demo`` runs the stages' commands in order on this plan, so each stage prints what it
prints when a person types it; everything the demo decides itself lives here.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.home import Home
from core.scores import read_history
from core.settings import CONFIG_FILE_NAME, Settings, dump_settings, load_settings
from demo.generator import DemoSummary, write_demo_data
from demo.generator import data_end as demo_data_end

# Behaviour changes this many days before the data end: after the last labelled date the model
# is trained and tested on (data end - horizon - grace), so training never sees it, and the drift
# report of the latest scores has something real to find.
DRIFT_DAYS_BEFORE_END = 88
FALLBACK_ACCOUNT = "ACC-000001"


@dataclass(frozen=True)
class DemoPlan:
    """Where the demo writes and which dates it uses.

    Attributes:
        home: the home folder the demo fills.
        data_end: the last day of the simulated data.
        drift_from: behaviour drifts after this date.
    """

    home: Home
    data_end: dt.date
    drift_from: dt.date

    @property
    def data_dir(self) -> Path:
        """The folder of the seven demo tables (and the generator's churnwatch.yaml)."""
        return self.home.root / "demo-data"

    def scoring_dates(self, settings: Settings) -> list[dt.date]:
        """Three scoring dates: one whose horizon has passed (performance), four weeks before the
        end (tier movements) and the data end."""
        matured = settings.horizon.last_matured(self.data_end) - dt.timedelta(days=1)
        return [matured, self.data_end - dt.timedelta(days=28), self.data_end]


def plan_demo(home: Home, months: int) -> DemoPlan:
    """The plan for ``months`` of demo data in ``home``."""
    end = demo_data_end(months)
    return DemoPlan(home=home, data_end=end, drift_from=end - dt.timedelta(days=DRIFT_DAYS_BEFORE_END))


def write_demo_home(plan: DemoPlan, accounts: int, months: int, seed: int) -> tuple[Settings, DemoSummary]:
    """Generate the demo data (replacing an earlier one) and write the home's config pointing at it.

    Returns:
        The settings now in ``<home>/churnwatch.yaml`` and the generator's summary.
    """
    if plan.data_dir.exists():
        shutil.rmtree(plan.data_dir)
    summary = write_demo_data(plan.data_dir, accounts=accounts, months=months, seed=seed,
                              drift_from=plan.drift_from)
    root = plan.home.root
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(plan.data_dir / CONFIG_FILE_NAME, root / CONFIG_FILE_NAME)
    settings = load_settings(root / CONFIG_FILE_NAME).model_copy(update={"data": str(plan.data_dir)})
    dump_settings(settings, root / CONFIG_FILE_NAME)
    return settings, summary


def riskiest_account(store: Path, as_of: dt.date) -> str:
    """The account with the highest churn probability scored on ``as_of`` (ties: the smallest id)."""
    latest = read_history(store, as_of)
    ranked = latest.sort_values(["churn_probability", "account_id"], ascending=[False, True])
    return ranked["account_id"].iloc[0] if len(ranked) else FALLBACK_ACCOUNT
