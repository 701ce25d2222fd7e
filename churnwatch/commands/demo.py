"""`churnwatch demo`: every stage's command in order on demo data generated on the spot.

The plan (dates, data, config) comes from ``demo.pipeline``; each stage prints what it prints
when a person types its command.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated

import typer

from churnwatch.commands.diagnosis import diagnose
from churnwatch.commands.features import features, metrics
from churnwatch.commands.insights import report
from churnwatch.commands.monitoring import run_drift, run_performance
from churnwatch.commands.serving import score
from churnwatch.commands.training import promote, train
from churnwatch.options import HomeOpt, console, jsonable, steps
from core.home import Home
from core.store import HISTORY, SNAPSHOTS
from core.vocabulary import TIER_KEYS
from demo.pipeline import plan_demo, riskiest_account, write_demo_home
from demo.team import ADMIN, LEAD, TEAM, demo_team
from workflow.db import store_for
from workflow.tasks import list_tasks


def demo(home: HomeOpt = None,
         accounts: Annotated[int, typer.Option(min=50)] = 2000,
         months: Annotated[int, typer.Option(min=12)] = 24,
         seed: int = 7) -> None:
    """The whole path on demo data generated on the spot: data -> features -> model -> scores -> reports."""
    h = Home.resolve(home)
    plan = plan_demo(h, months)
    console.rule("1/10 demo data (behaviour drifts from " + plan.drift_from.isoformat() + ")")
    with steps() as say:
        say(f"generating {accounts:,} accounts x {months} months")
        settings, summary = write_demo_home(plan, accounts=accounts, months=months, seed=seed)
    console.print(f"wrote demo data to {plan.data_dir}")
    console.print(json.dumps(jsonable(summary), indent=2, default=str))
    console.rule("2/10 features and labels")
    features(data=None, store=None, as_of=None, home=h.root, config=None)
    console.rule("3/10 churn metrics")
    metrics(data=None, home=h.root, config=None, out=None)
    console.rule("4/10 train: LightGBM, calibration, health tiers, baselines (MLflow)")
    train(store=None, home=h.root, config=None, seed=0, table=None, label=None, id_col=None)
    console.rule("5/10 promote")
    promote(version=None, force=False, reason=None, home=h.root)
    dates = plan.scoring_dates(settings)
    console.rule("6/10 score every active account on " + ", ".join(d.isoformat() for d in dates)
                 + "; alerts and retention tasks")
    score(data=None, store=None, home=h.root, config=None, as_of=",".join(d.isoformat() for d in dates), model=None)
    console.rule("7/10 monitoring: drift of the latest scores, performance of the matured ones (Evidently)")
    drift = run_drift(store=None, out=None, as_of=None, home=h.root, config=None)
    run_performance(store=None, out=None, home=h.root, config=None)
    console.rule("8/10 report for customer success (English and Chinese)")
    report_en = report(store=None, home=h.root, config=None, out=None, tier=None, lang="en", top=50,
                       accounts=None, as_of=None, model=None)
    report_zh = report(store=None, home=h.root, config=None, out=None, tier=None, lang="zh-CN", top=50,
                       accounts=None, as_of=None, model=None)
    console.rule("9/10 churn diagnosis and the closed loop")
    # The demo's score history has a single matured date; the champion's out-of-sample test
    # block (13 weekly dates) gives the closed loop more to compare.
    diagnose(data=None, out=None, home=h.root, config=None, store=None, months=12, start=None, end=None,
             scores="backfill", model=None)
    console.rule("10/10 the team's workspace: users and retention tasks")
    team = demo_team(h.root, h.store, settings)
    console.print(f"team {TEAM!r}: lead {team.lead}, admin {team.admin}, {len(team.csms)} CSMs "
                  f"({', '.join(team.csms[:4])}{', ...' if len(team.csms) > 4 else ''})", markup=False,
                  highlight=False)
    open_tasks = list_tasks(store_for(h.root, settings.operations.url))
    by_tier = Counter(t["tier"] for t in open_tasks)
    console.print(f"retention tasks open: {len(open_tasks):,} ("
                  + ", ".join(f"{tier} {by_tier[tier]:,}" for tier in TIER_KEYS if by_tier[tier]) + ", "
                  f"{sum(t['overdue'] for t in open_tasks):,} overdue): churnwatch tasks",
                  markup=False, highlight=False)
    top = riskiest_account(h.store, plan.data_end)
    csm = team.csms[0] if team.csms else LEAD
    console.rule("next")
    console.print(f"home folder: {h.root}\n"
                  f"  snapshots:      {h.store} (DuckDB: SELECT * FROM {SNAPSHOTS}; scores: {HISTORY})\n"
                  f"  run summary:    {h.run_summary}\n"
                  f"  churn metrics:  {h.reports / 'churn-metrics.csv'}\n"
                  f"  MLflow:         {h.tracking_uri} (mlflow ui --backend-store-uri {h.tracking_uri})\n"
                  f"  training plots: {h.reports / 'training'}\n"
                  f"  drift report:   {h.reports / 'monitoring' / 'drift.html'}"
                  f"{'  (ALARM: churnwatch drift exits 3)' if drift.get('alarm') else ''}\n"
                  f"  performance:    {h.reports / 'monitoring' / 'performance.html'}\n"
                  f"  CS report:      {report_en}\n"
                  f"                  {report_zh}\n"
                  f"  diagnosis:      {h.reports / 'diagnosis'}\n"
                  f"  operations:     {h.root / 'operations.sqlite'} (users, tasks, alerts, deliveries, audit log)\n"
                  f"open the reports in a browser, or try:\n"
                  f"  churnwatch explain {top}   |   churnwatch explain {top} --lang zh-CN   |   churnwatch tasks\n"
                  "  churnwatch serve   then   curl -s localhost:3000/score_accounts "
                  f"-H 'Content-Type: application/json' -d '{{\"account_ids\": [\"{top}\"]}}'\n"
                  f"  churnwatch app    then open http://127.0.0.1:3001 and sign in as {csm} "
                  f"(CSM), {LEAD} (lead) or {ADMIN} (admin); this demo home's password: {team.password}",
                  markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command()(demo)
