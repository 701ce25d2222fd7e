"""Store copies for tests that share a trained setup."""

from __future__ import annotations


def unscored_copy(tmp, dest):
    """A copy of the shared setup's store without any score history (tests such as test_batch.py
    score into the shared store; a test that starts from "no score yet" takes this copy)."""
    import shutil

    import duckdb

    shutil.copy(tmp / "s.duckdb", dest)
    with duckdb.connect(str(dest)) as con:
        con.execute("DROP TABLE IF EXISTS score_history")
    return dest


def copy_home(home, dest):
    """A copy of the session's shared home (``demo_home`` in tests/conftest.py) at ``dest`` for a test
    that writes into it."""
    import shutil

    shutil.copytree(home, dest)
    return dest
