"""The layout (issue 11): imports run one way, nothing imports tests/, no circle, no private
name crosses a module, small modules, and the shared concepts each defined once.

The imports are read with ``ast`` from the files (nothing is imported), so a broken module
still shows up here by name.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The flow, lowest first: a package may import its own modules and any package of a lower rank.
#: monitoring and insights share a rank and do not import each other.
RANK = {"core": 0, "features": 1, "training": 2, "workflow": 3, "serving": 4, "monitoring": 5, "insights": 5,
        "workspace": 6, "demo": 7, "churnwatch": 8}
#: Scripts at the edge: they may import every package, but not tests/.
EDGES = ("benchmarks",)
MAX_LINES = 400
#: The opening comment or docstring of a longer module says why, in these words.
LONG_REASON = re.compile(r"over 400 lines", re.IGNORECASE)


@dataclass(frozen=True)
class Import:
    importer: str  # module name
    target: str  # imported module name
    names: tuple[str, ...]  # ``from target import names``
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def source_files() -> list[Path]:
    files = [p for pkg in (*RANK, *EDGES) for p in sorted((ROOT / pkg).rglob("*.py"))]
    return [p for p in files if "__pycache__" not in p.parts]


def imports_of(path: Path) -> list[Import]:
    """Every import in the file (module level and inside functions), relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [Import(name, a.name, (), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.append(Import(name, base, tuple(a.name for a in node.names), node.lineno))
    return out


ALL_IMPORTS = [imp for path in source_files() for imp in imports_of(path)]
MODULES = {module_name(p) for p in source_files()}


def top(module: str) -> str:
    return module.split(".")[0]


def test_the_scan_sees_every_package():
    assert {top(m) for m in MODULES} >= set(RANK)
    assert len(ALL_IMPORTS) > 100


def test_imports_follow_the_flow():
    against = []
    for imp in ALL_IMPORTS:
        src, dst = top(imp.importer), top(imp.target)
        if src not in RANK or dst not in RANK or src == dst:
            continue
        if RANK[dst] >= RANK[src]:
            against.append(f"{imp.importer}:{imp.line} imports {imp.target}")
    assert not against, "imports against core <- features <- training <- workflow <- serving <- " \
                        "{monitoring, insights} <- workspace <- demo <- churnwatch:\n" + "\n".join(against)


def test_nothing_imports_tests():
    bad = [f"{imp.importer}:{imp.line}" for imp in ALL_IMPORTS if top(imp.target) == "tests"]
    assert not bad, "library code and benchmarks import tests/: " + ", ".join(bad)


def test_no_private_name_crosses_a_module():
    bad = []
    for imp in ALL_IMPORTS:
        if imp.target not in MODULES:
            continue  # third-party
        if any(part.startswith("_") and not part.startswith("__") for part in imp.target.split(".")):
            bad.append(f"{imp.importer}:{imp.line} imports private module {imp.target}")
        bad += [f"{imp.importer}:{imp.line} imports {imp.target}.{n}" for n in imp.names
                if n.startswith("_") and not n.startswith("__")]
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in ALL_IMPORTS:
        targets = [imp.target] + [f"{imp.target}.{n}" for n in imp.names]
        for t in targets:
            if t in MODULES and t != imp.importer:
                graph[imp.importer].add(t)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    cycles = _cycles(_graph())
    assert not cycles, "modules importing each other in a circle: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_circle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _opening(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(text)) or ""
    comments = "".join(line for line in text.splitlines()[:5] if line.startswith("#"))
    return doc + comments


def test_no_long_module_without_a_reason():
    long = []
    for path in source_files():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES and not LONG_REASON.search(_opening(path)):
            long.append(f"{path.relative_to(ROOT)} ({n} lines)")
    assert not long, f"modules over {MAX_LINES} lines without a reason in their opening comment: " + ", ".join(long)


# --- each concept defined once ---------------------------------------------------------------

def _literal_strings(path: Path) -> list[str]:
    return [n.value for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _files_with_literal(pattern: re.Pattern[str]) -> list[str]:
    return sorted({str(p.relative_to(ROOT)) for p in source_files()
                   for s in _literal_strings(p) if pattern.search(s)})


def test_tier_labels_and_colours_are_written_once():
    from core.vocabulary import TIERS

    words = [w for t in TIERS for w in (t.en, t.zh, t.colour)]
    pattern = re.compile("^(" + "|".join(re.escape(w) for w in words) + ")$")  # a label or colour on its own
    assert _files_with_literal(pattern) == ["core/vocabulary.py"]


def test_the_horizon_rule_is_written_once():
    """``horizon + grace`` (the matured / labelled rule) only in core/time.py."""
    rule = re.compile(r"horizon_days\s*\+\s*\S*grace_days|\{h\}\s*\+\s*\{g\}")
    found = sorted(str(p.relative_to(ROOT)) for p in source_files() if rule.search(p.read_text(encoding="utf-8")))
    assert found == ["core/time.py"]


def test_the_store_schema_and_tables_live_in_core_store():
    tables = ("score_history", "snapshot_meta")  # alerts, tasks, deliveries: the operational store (workflow)
    ddl = re.compile(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS|\b(FROM|JOIN|INTO|UPDATE)\s+(" + "|".join(tables)
                     + r"|snapshots)\b", re.IGNORECASE)
    assert _files_with_literal(ddl) == ["core/store.py"]
    connects = sorted(str(p.relative_to(ROOT)) for p in source_files() if p.parts[-2] != "benchmarks"
                      and re.search(r"duckdb\.connect\((?!\s*\"?:memory:\"?\s*\))", p.read_text(encoding="utf-8")))
    assert connects == ["core/store.py"]


@pytest.mark.parametrize("module, names", [
    ("training.health", ("TIERS", "TIER_KEYS")),
    ("insights.report", ("TIER_COLOURS", "TIER_KEYS", "TIER_RANK", "tier_label")),
    ("insights.explain", ("TIERS", "TIER_KEYS", "LANGS", "tier_label")),
    ("workflow.alerts", ("TIER_RANK",)),
    ("workflow.tasks", ("TIER_KEYS",)),
    ("core.settings", ("TIER_KEYS",)),
])
def test_stages_take_the_tiers_from_the_one_table(module, names):
    import importlib

    from core import vocabulary

    mod = importlib.import_module(module)
    for name in names:
        assert getattr(mod, name) is getattr(vocabulary, name), f"{module}.{name}"


def test_a_changed_tier_label_shows_everywhere(monkeypatch):
    """Change nothing but the table: the explain view, the report's label function, the CLI's
    colour and the settings' validation follow."""
    import dataclasses

    from core import vocabulary
    from core.settings import Settings
    from insights import explain, report

    renamed = dataclasses.replace(vocabulary.TIER_BY_KEY["high_risk"], en="Red alert", zh="红色警报",
                                  terminal_colour="magenta")
    monkeypatch.setitem(vocabulary.TIER_BY_KEY, "high_risk", renamed)
    assert report.tier_label("high_risk", "en") == "Red alert"
    assert explain.tier_label("high_risk", "zh-CN") == "红色警报"
    view = explain.AccountView.__new__(explain.AccountView)
    object.__setattr__(view, "tier", "high_risk")
    object.__setattr__(view, "lang", "en")
    assert view.tier_label == "Red alert"
    with pytest.raises(ValueError, match="unknown tier"):
        Settings(playbooks={"watch_list": {"action_en": "x", "action_zh": "x", "owner": "CSM",
                                            "respond_within": "1 day"}})


def test_the_horizon_is_read_from_the_store_not_the_config(tmp_path):
    """A store built with one horizon keeps it, whatever the config says later."""
    import datetime as dt

    from core.settings import Settings
    from core.store import SnapshotMeta, connect, read_horizon, write_snapshots
    from core.time import Horizon

    store = tmp_path / "store.duckdb"
    meta = SnapshotMeta(catalogue_json="{}", data_start=dt.date(2024, 1, 1), data_end=dt.date(2024, 12, 31),
                        horizon_days=45, grace_days=10, source="test", input_hash="x",
                        built_at=dt.datetime(2025, 1, 1))
    with connect(store) as con:
        con.execute("CREATE TEMP TABLE incoming AS SELECT 'A' AS account_id, DATE '2024-06-01' AS as_of")
        write_snapshots(con, "incoming", meta, replace_all=True)
    assert read_horizon(store) == Horizon(45, 10)
    assert Settings(horizon_days=90).horizon == Horizon(90, 30)
    h = read_horizon(store)
    assert h.matured(dt.date(2024, 11, 6), dt.date(2024, 12, 31))  # + 55 days = Dec 31
    assert not h.matured(dt.date(2024, 11, 7), dt.date(2024, 12, 31))
    assert h.last_matured(dt.date(2024, 12, 31)) == dt.date(2024, 11, 6)
