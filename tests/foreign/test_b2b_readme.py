"""The README's section "A B2B company's exports from four tools" is the one tested: its
``churnwatch.yaml`` is ``tests/foreign/b2b.py``'s, and its join code, run on the generated tools'
files, writes the same invoices and tickets as ``b2b_prepare`` (which the CLI test runs)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import yaml

from core.settings import Settings
from tests.foreign.b2b import b2b_config, b2b_exports, b2b_prepare

SECTION = ((Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
           .split("#### A B2B company's exports from four tools")[1].split("\n#### ")[0])


def test_the_readme_config_is_the_tested_one_and_valid():
    cfg = yaml.safe_load(SECTION.split("```yaml\n")[1].split("```")[0])
    assert cfg == b2b_config("./exports", "periods")
    assert Settings.model_validate(cfg).column_units["invoices"]["amount"] == "cents"


def test_the_readme_join_rekeys_invoices_and_tickets_as_the_tested_one(tmp_path):
    b2b_exports(tmp_path, n=40, seed=2)
    b2b_prepare(tmp_path, tmp_path / "tested", "periods")
    (tmp_path / "exports").mkdir()
    code = SECTION.split("```python\n")[1].split("```")[0]
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own snippet
    finally:
        os.chdir(here)
    for table in ("invoices", "tickets"):
        ours = pd.read_csv(tmp_path / "exports" / f"{table}.csv", dtype=str)
        tested = pd.read_csv(tmp_path / "tested" / f"{table}.csv", dtype=str)
        pd.testing.assert_frame_equal(ours, tested)
        assert ours["account_id"].notna().mean() > 0.9
