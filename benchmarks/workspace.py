"""Workspace page benchmark: p50 / p95 of each page on the demo home, through a real
`churnwatch app` process on 127.0.0.1 and HTTP (httpx), signed in as a CSM, a lead and an admin.

The home must hold a demo run (``churnwatch demo --home DIR``: published scores, snapshots, tasks).
The benchmark adds its users to the home's operational store once (every CSM of the accounts, in
one team; a lead of that team; an admin; passwords ``bench-password``), then requests each page
``--rounds`` times after ``--warmup`` requests and prints a table and JSON.

The Portfolio page (a manager's) is timed for the lead and the admin only.

With ``--screenshots DIR`` it also renders each page as the CSM and the lead sees it, in English
and in Chinese, to ``DIR/workspace-<page>-<lang>.png`` with the project's headless Chromium
(``churnwatch.browser.screenshot``) for the README.

Usage: python benchmarks/workspace.py --home DIR [--rounds 100] [--port 3017] [--screenshots docs/images]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from core.home import Home  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.store import csm_names  # noqa: E402
from workflow.db import store_for, write  # noqa: E402
from workflow.people import TEAMS, USERS, add_user, user_for_csm  # noqa: E402
from workspace.auth import set_password  # noqa: E402
from workspace.portfolio import Scores, by_expected_loss  # noqa: E402

PASSWORD = "bench-password"
TEAM = "Bench"
#: screenshot heights of the pages longer than one screen (px; else 900; the account page: down to its waterfall)
HEIGHTS = {"portfolio": 1750, "review": 2300, "account": 1650}


def prepare_users(home: Path) -> dict[str, str]:
    """role -> login; every CSM of the store in team Bench, with a lead and an admin."""
    engine = store_for(home)
    names = csm_names(Home(home).store)
    with write(engine) as conn:
        for name in names:
            user_for_csm(conn, name, "bench")
        team = conn.execute(sa.select(TEAMS.c.id).where(TEAMS.c.name == TEAM)).scalar()
        if team is None:
            add_user(conn, name="Bench Lead", email="lead@bench.example", role="lead", team=TEAM, actor="bench")
            add_user(conn, name="Bench Admin", email="admin@bench.example", role="admin", actor="bench")
            team = conn.execute(sa.select(TEAMS.c.id).where(TEAMS.c.name == TEAM)).scalar()
        conn.execute(USERS.update().where(USERS.c.crm_name.in_(names)).values(team_id=team))
    scores = Scores(Home(home).store, Settings()).all("en")
    riskiest = by_expected_loss([r for r in scores if r["churned_on"] is None])[0]
    csm = riskiest["csm"]
    for login in (csm, "lead@bench.example", "admin@bench.example"):
        set_password(engine, login, PASSWORD, "bench")
    churned = sorted(r["account_id"] for r in scores if r["churned_on"] is not None and r["csm"] == csm)
    return {"csm": csm, "lead": "lead@bench.example", "admin": "admin@bench.example",
            "riskiest": riskiest["account_id"], "churned": (churned or [riskiest["account_id"]])[0]}


def timed(client: httpx.Client, url: str, rounds: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        client.get(url).raise_for_status()
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        answer = client.get(url)
        out.append((time.perf_counter() - t0) * 1000)
        answer.raise_for_status()
    return out


def token_after(client: httpx.Client) -> str:
    return client.get("/").text.split('name="csrf_token" value="')[1].split('"')[0]


def shoot(client: httpx.Client, token: str, pages: dict[str, str], folder: Path) -> None:
    """Each page in both languages as a PNG (the page's HTML with its style sheet inlined)."""
    import tempfile

    from churnwatch.browser import screenshot

    css = (ROOT.parent / "workspace" / "static" / "workspace.css").read_text()
    for lang in ("en", "zh-CN"):
        client.post("/lang", data={"lang": lang, "csrf_token": token})
        for name, url in pages.items():
            html = client.get(url).text.replace('<link rel="stylesheet" href="/static/workspace.css">',
                                                f"<style>{css}</style>")
            with tempfile.TemporaryDirectory() as tmp:
                page = Path(tmp) / "page.html"
                page.write_text(html, encoding="utf-8")
                screenshot(page, folder / f"workspace-{name}-{lang}.png", width=1280, height=HEIGHTS.get(name, 900))
    client.post("/lang", data={"lang": "en", "csrf_token": token})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--port", type=int, default=3017)
    ap.add_argument("--screenshots", type=Path, default=None)
    args = ap.parse_args()
    who = prepare_users(args.home)
    base = f"http://127.0.0.1:{args.port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT.parent)}
    proc = subprocess.Popen([sys.executable, "-m", "churnwatch", "app", "--home", str(args.home), "--port",
                             str(args.port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    results = []
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        from urllib.parse import quote

        account = "/accounts/" + quote(who["riskiest"], safe="")
        for role in ("csm", "lead", "admin"):
            with httpx.Client(base_url=base, timeout=30) as client:
                page = client.get("/login").text
                token = page.split('name="csrf_token" value="')[1].split('"')[0]
                client.post("/login", data={"username": who[role], "password": PASSWORD, "csrf_token": token})
                # review pages: the exit-interview form (a churned account of the CSM) and the churn review
                interview = "/accounts/" + quote(who["churned"], safe="") + "/exit-interview"
                pages = [("my day", "/"), ("account", account), ("tasks board", "/tasks"),
                         ("tasks board, all", "/tasks?status=all"), ("exit interview", interview),
                         ("exit interviews", "/interviews")]
                if role in ("lead", "admin"):  # the manager's pages (a CSM gets 403)
                    pages += [("portfolio", "/portfolio"), ("portfolio, by plan", "/portfolio?by=plan"),
                              ("churn review", "/review")]
                if role == "admin":  # settings without code
                    pages += [("settings", "/admin/settings"), ("settings history", "/admin/settings/history")]
                for name, url in pages:
                    ms = timed(client, url, args.rounds, args.warmup)
                    q = statistics.quantiles(ms, n=100)
                    results.append({"role": role, "page": name, "p50_ms": round(statistics.median(ms), 1),
                                    "p95_ms": round(q[94], 1), "max_ms": round(max(ms), 1), "n": len(ms)})
                if args.screenshots:
                    shots = {"csm": {"my-day": "/", "account": account, "exit-interview": interview,
                                     "interviews": "/interviews"},
                             "lead": {"tasks": "/tasks", "portfolio": "/portfolio", "review": "/review"},
                             "admin": {"settings": "/admin/settings", "settings-history": "/admin/settings/history"}
                             }[role]
                    shoot(client, token_after(client), shots, args.screenshots)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    scores = Scores(Home(args.home).store, Settings()).all("en")
    print(f"demo home {args.home}: {len(scores):,} scored accounts; riskiest {who['riskiest']} (CSM {who['csm']})")
    print(f"{'role':6} {'page':18} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for r in results:
        print(f"{r['role']:6} {r['page']:18} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['max_ms']:8.1f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
