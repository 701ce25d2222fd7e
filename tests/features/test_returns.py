"""Terms that resume after a gap longer than the grace period are said at ``features``: each gap is labelled a
churn, which is right for a customer who left and came back and wrong for a pause exported as a gap (probe p54:
a Paddle export's pauses left as gaps raised monthly churn from 0.84% to 1.34% without a word)."""

from __future__ import annotations

from features.pipeline import RETURNS_MIN, build_snapshots
from tests.tiny import D, T, settings, write_tables


def _tables(accounts: int, paused_as_gap: int, paused_as_term: int = 0) -> dict:
    ids = [f"a{i:03d}" for i in range(accounts)]
    subs = []
    for i, a in enumerate(ids):
        if i < paused_as_gap:  # two months away, then back on the same plan
            subs += [dict(account_id=a, start_date=D(2024, 1, 1), end_date=D(2024, 3, 1), mrr=30.0, plan="pro"),
                     dict(account_id=a, start_date=D(2024, 5, 1), end_date=D(2025, 1, 1), mrr=30.0, plan="pro")]
        elif i < paused_as_gap + paused_as_term:  # the same pause sent as a term of its own
            subs += [dict(account_id=a, start_date=D(2024, 1, 1), end_date=D(2024, 3, 1), mrr=30.0, plan="pro"),
                     dict(account_id=a, start_date=D(2024, 3, 1), end_date=D(2024, 5, 1), mrr=30.0, plan="Paused"),
                     dict(account_id=a, start_date=D(2024, 5, 1), end_date=D(2025, 1, 1), mrr=30.0, plan="pro")]
        else:
            subs.append(dict(account_id=a, start_date=D(2024, 1, 1), end_date=D(2025, 1, 1), mrr=30.0, plan="pro"))
    events = [dict(account_id=a, user_id="u", occurred_at=T(2024, 2, 1, 9), event_type="login", quantity=1.0)
              for a in ids]
    return {"accounts": [dict(account_id=a) for a in ids], "subscriptions": subs, "events": events}


def _said(tmp_path, tables) -> list[str]:
    data = write_tables(tmp_path / "data", tables)
    result = build_snapshots(data, settings(data_end=D(2024, 12, 31)), tmp_path / "s.duckdb", as_of=[D(2024, 6, 3)])
    return [w for w in result.validation.warnings if "resume after a gap" in w]


def test_terms_resuming_after_a_gap_are_said_with_the_pause_remedy(tmp_path):
    [said] = _said(tmp_path, _tables(100, paused_as_gap=8))
    assert said.startswith("subscriptions: 8 of 100 accounts (8%) have terms that resume after a gap longer than "
                           "the grace period (30 days; 8 gaps): each gap is labelled a churn")
    assert "send each pause as a term of its own (plan 'paused'" in said


def test_pauses_sent_as_terms_and_a_few_win_backs_are_not(tmp_path):
    assert _said(tmp_path / "terms", _tables(100, paused_as_gap=0, paused_as_term=8)) == []
    assert _said(tmp_path / "few", _tables(400, paused_as_gap=RETURNS_MIN - 1)) == []
