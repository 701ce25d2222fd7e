"""Property-based run of the HTTP API with schemathesis (issue 14, item 5).

Runs ``st run`` (schemathesis 4) against the service's own OpenAPI document (``/docs.json``) with
every check (``--checks all``: no 5xx, status codes, content types, headers and bodies as documented,
schema-valid requests accepted, schema-violating ones refused, undeclared methods answered 405 with
``Allow``) over every endpoint, in every phase (examples, coverage, fuzzing, stateful), twice: with
the bearer token and without it. ``tests/serving/test_schemathesis.py`` runs it with a few examples
per endpoint; this script's default is the big run.

The one thing a schema cannot say: a ``GET /scores`` cursor is opaque (only the ones the server
hands out are valid, anything else is 422). The hook below turns a generated cursor into a real one
(the same string as the id to start after), so the check that valid requests are accepted still
covers every other parameter; a cursor generated as invalid is left as it is.

This module is also the hooks module of the run (``SCHEMATHESIS_HOOKS=benchmarks.schemathesis_run``).

Usage: python benchmarks/schemathesis_run.py [--home churnwatch-data | --url http://127.0.0.1:3000 --token T]
       [--max-examples 300] [--seed N] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import schemathesis  # noqa: E402
from schemathesis.core.parameters import ParameterLocation  # noqa: E402

from serving.sync import encode_cursor  # noqa: E402

HOOKS_MODULE = "benchmarks.schemathesis_run"


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    """A generated ``GET /scores`` cursor (valid by the schema) as a cursor the server could have sent."""
    query = case.query if isinstance(case.query, dict) else None
    if case.operation.path != "/scores" or not query or not isinstance(query.get("cursor"), str):
        return case
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.QUERY):
        return case
    case.query = {**query, "cursor": encode_cursor(query["cursor"])}
    return case


@dataclass
class Run:
    """One ``st run``: its exit code, the requests it sent (``cases``), the failures it found and its output's tail."""

    token: bool
    exit_code: int
    seconds: float
    cases: int = 0
    failures: list[str] = field(default_factory=list)
    operations: int = 0
    output: str = ""

    def line(self) -> str:
        who = "with the token" if self.token else "without a token"
        return (f"{who}: {self.operations} operations, {self.cases} test cases, {len(self.failures)} failures, "
                f"{self.seconds:.1f} s (exit {self.exit_code})")


def st_command(base: str, token: str | None, max_examples: int, seed: int | None, report: Path,
               workers: int = 1, phases: str | None = None) -> list[str]:
    """The ``st run`` command line for the service at ``base``."""
    command = [str(Path(sys.executable).with_name("st")), "run", f"{base}/docs.json", "--checks", "all",
               "--max-examples", str(max_examples), "--workers", str(workers), "--no-color",
               "--request-timeout", "30", "--report", "ndjson", "--report-ndjson-path", str(report),
               "--generation-database", "none", "--suppress-health-check", "all"]
    if seed is not None:
        command += ["--seed", str(seed)]
    if phases:
        command += ["--phases", phases]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    return command


def run(base: str, token: str | None, max_examples: int, seed: int | None = None, workers: int = 1,
        timeout_seconds: float = 3600, phases: str | None = None) -> Run:
    """``st run`` against ``base`` (with ``token`` as bearer token when given), every check; ``phases``:
    a comma-separated subset of examples, coverage, fuzzing, stateful (default all)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "events.ndjson"
        env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS_MODULE, "PYTHONPATH": str(ROOT.parent),
               "NO_COLOR": "1", "COLUMNS": "120"}
        started = time.monotonic()
        done = subprocess.run(st_command(base, token, max_examples, seed, report, workers, phases), capture_output=True,
                              text=True, env=env, timeout=timeout_seconds, cwd=tmp)
        result = Run(token=bool(token), exit_code=done.returncode, seconds=time.monotonic() - started,
                     output=(done.stdout + done.stderr)[-6000:])
        if report.exists():
            summarise(report, result)
    return result


def summarise(report: Path, result: Run) -> None:
    """Requests, operations and failures from the run's event stream (``--report ndjson``)."""
    operations: set[str] = set()
    for line in report.read_text(encoding="utf-8").splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if finished is None:
            continue
        recorder = finished.get("recorder") or {}
        if " /" in (recorder.get("label") or ""):
            operations.add(recorder["label"])
        result.cases += len(recorder.get("interactions") or {})
        for checks in (recorder.get("checks") or {}).values():
            for check in checks:
                if check.get("status") == "failure":
                    failure = (check.get("failure_info") or {}).get("failure") or {}
                    result.failures.append(f"{failure.get('operation', recorder.get('label'))}: "
                                           f"{failure.get('code', '')} {failure.get('title', check.get('name'))}")
    result.operations = len(operations)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", default="churnwatch-data", help="home whose champion and store are served")
    ap.add_argument("--url", help="a running server instead (its token with --token)")
    ap.add_argument("--token", default=None)
    ap.add_argument("--max-examples", type=int, default=300)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2, help="schemathesis workers (concurrent requests)")
    args = ap.parse_args()
    proc = None
    if args.url:
        base, token = args.url.rstrip("/"), args.token
    else:
        from core.home import Home
        from serving.launch import free_port, start_server

        token = args.token or "schemathesis-token"
        home = Home.resolve(args.home)
        proc, base = start_server(free_port(), {"CHURNWATCH_HOME": str(home.root), "CHURNWATCH_API_TOKEN": token},
                                  timeout_seconds=180)
    try:
        runs = [run(base, t, args.max_examples, args.seed, args.workers) for t in (token, None)]
    finally:
        if proc is not None:
            from serving.launch import stop_server

            stop_server(proc)
    for r in runs:
        print(r.line())
        for failure in sorted(set(r.failures)):
            print(f"  {failure}")
        if r.exit_code != 0:
            print(r.output)
    print(json.dumps({"max_examples": args.max_examples, "runs": [
        {"token": r.token, "operations": r.operations, "cases": r.cases, "failures": len(r.failures),
         "seconds": round(r.seconds, 1), "exit_code": r.exit_code} for r in runs]}))
    sys.exit(0 if all(r.exit_code == 0 for r in runs) else 1)


if __name__ == "__main__":
    main()
