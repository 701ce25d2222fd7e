"""k copies of a benchmark's demo data with the account ids renamed: k times the accounts, the events
and the snapshot rows on the same schedule (``benchmarks/features.py`` and ``benchmarks/scoring.py``
``--scale``)."""

from __future__ import annotations

import time
from pathlib import Path


def scaled_copy(data: Path, k: int) -> Path:
    """``k`` copies of the data folder's tables, account ids renamed per copy (made once)."""
    import duckdb

    out = data.parent / f"{data.name}-x{k}"
    if (out / "churnwatch.yaml").exists():  # written last: the copy is complete
        return out
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    with duckdb.connect() as con:  # bounded: unbounded, 4 copies took 12 GB and the OOM killer
        con.execute("SET memory_limit = '3GB'")
        con.execute("SET preserve_insertion_order = false")
        for f in sorted(data.glob("*.parquet")):
            copies = " UNION ALL ".join(
                f"SELECT * REPLACE (account_id || '~c{j}' AS account_id) FROM read_parquet('{f}')" for j in range(k))
            con.execute(f"COPY ({copies}) TO '{out / f.name}' (FORMAT parquet)")
    (out / "churnwatch.yaml").write_text((data / "churnwatch.yaml").read_text())
    print(f"made {k} copies of {data.name} in {out} in {time.perf_counter() - t:.1f} s")
    return out
