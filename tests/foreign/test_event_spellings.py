"""Product-analytics exports (Segment, Amplitude, Mixpanel) spell one event type several ways:
"Song Played", "song_played", "song played ". Each spelling used to become its own feature family
(``evt_song_played_*``, ``evt_song_played2_*``), splitting the counts. Spellings that differ only
in case, spaces, '-' or '_' are now one event type, named as ``event_roles`` names it, else by its
most frequent spelling; ``features`` says so and the catalogue's definitions list the spellings."""

from __future__ import annotations

import duckdb

from core.settings import EventRoles, Settings
from features.pipeline import build_snapshots
from features.spec import build_catalogue, event_families, family_key
from tests.tiny import D, write_tables

AS_OF = D(2024, 6, 1)


def _data(folder):
    accounts = [{"account_id": a} for a in ("A1", "A2", "A3")]
    # the accounts begin with the log (2024-05-10), so their windows are whole (not scaled: features.spec.scaled)
    subs = [{"account_id": a, "start_date": D(2024, 5, 10), "end_date": None, "mrr": 10.0} for a in ("A1", "A2", "A3")]
    events = []
    # A1: 3 + 2 + 1 + 1 song plays in the last 30 days, four spellings; one 'song.played' (another type)
    for day, name in [(10, "Song Played"), (11, "Song Played"), (12, "Song Played"), (13, "song_played"),
                      (14, "song_played"), (15, "song played "), (16, "SONG-PLAYED"), (17, "song.played")]:
        events.append({"account_id": "A1", "user_id": "u1", "occurred_at": f"2024-05-{day} 10:00",
                       "event_type": name})
    # logins spelled two ways; the config names "login"
    for day, name in [(20, "Login"), (21, "Login"), (22, "Login"), (23, "LOGIN")]:
        events.append({"account_id": "A2", "user_id": "u2", "occurred_at": f"2024-05-{day} 09:00",
                       "event_type": name})
    events.append({"account_id": "A3", "user_id": "u3", "occurred_at": "2024-05-25 09:00", "event_type": "Song Played"})
    return write_tables(folder, {"accounts": accounts, "subscriptions": subs, "events": events})


def test_family_key_and_name():
    assert family_key("Song Played") == family_key("song_played") == family_key(" song-played ") \
        == family_key("SONG  PLAYED")
    assert family_key("song.played") != family_key("song played")
    fam = event_families({"Song Played": 5, "song_played": 2, "song played": 5, "song.played": 1, "Login": 3})
    # most frequent spelling names the family; a tie goes to the first in sort order
    assert fam == {"Login": {"Login": 3}, "Song Played": {"Song Played": 5, "song played": 5, "song_played": 2},
                   "song.played": {"song.played": 1}}
    # a spelling named in event_roles wins, even when the data never uses it
    assert list(event_families({"Login": 3, "LOGIN": 1}, ["login"])) == ["login"]


def test_leading_and_trailing_separators_are_part_of_the_name():
    """Only case, surrounding spaces and the separators INSIDE a name are folded: "_login" (a system
    or internal event) is not the user's "login", nor is "login_" or "-login"."""
    keys = {family_key(s) for s in ("login", "_login", "-login", "login_", "__login", "login-")}
    assert len(keys) == 6
    assert family_key(" _Session Start ") == family_key("_session-start") == family_key("_SESSION__START")
    assert family_key("__heartbeat__") == "__heartbeat__" and family_key("_-_") == "_-_"
    fam = event_families({"login": 5, "Login": 1, "_login": 3, "login_": 2})
    assert fam == {"_login": {"_login": 3}, "login": {"login": 5, "Login": 1}, "login_": {"login_": 2}}
    # a family named in event_roles takes only its own spellings, not the underscored system event
    assert event_families({"Login": 3, "_login": 4}, ["login"]) == {"_login": {"_login": 4}, "login": {"Login": 3}}
    # both keep their own feature family; the shared slug gets the numeric suffix
    cat = build_catalogue(["_login", "login"])
    assert cat["evt_login_30d"].params["event_type"] == "_login"
    assert cat["evt_login2_30d"].params["event_type"] == "login"


def test_one_family_per_event_type(tmp_path):
    folder = _data(tmp_path / "data")
    settings = Settings(data_end=AS_OF, event_roles=EventRoles(login=["login"]))
    result = build_snapshots(folder, settings, tmp_path / "s.duckdb", as_of=[AS_OF])
    names = result.catalogue.names
    assert result.catalogue.event_types == ("Song Played", "login", "song.played")
    # one family per type: "song.played" shares the slug but not the family (the numeric suffix), and
    # before, the four spellings of "Song Played" were four families (evt_song_played2..5_*)
    assert [n for n in names if n.startswith("evt_") and n.endswith("_30d") and "users" not in n] == [
        "evt_song_played_30d", "evt_login_30d", "evt_song_played2_30d"]
    assert result.catalogue["evt_song_played2_30d"].params["event_type"] == "song.played"
    assert result.catalogue.spellings == {
        "Song Played": {"Song Played": 4, "song_played": 2, "SONG-PLAYED": 1, "song played": 1},
        "login": {"Login": 3, "LOGIN": 1}}
    spec = result.catalogue["evt_song_played_30d"]
    assert "also spelled 'song_played', 'SONG-PLAYED', 'song played'" in spec.definition
    assert spec.reason_en == "{value} 'Song Played' events in the last 30 days"
    with duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True) as con:
        rows = dict(con.execute("SELECT account_id, evt_song_played_30d FROM snapshots").fetchall())
        logins = dict(con.execute("SELECT account_id, logins_30d FROM snapshots").fetchall())
    assert rows == {"A1": 7, "A2": 0, "A3": 1}  # every spelling counted in the one family
    assert logins["A2"] == 4  # the login role ("login") reads "Login" and "LOGIN"
    assert result.summary()["event_spellings"]["login"] == {"Login": 3, "LOGIN": 1}


def test_features_command_says_so(tmp_path):
    from tests.foreign.inprocess import run_cli

    folder = _data(tmp_path / "data")
    (folder / "churnwatch.yaml").write_text(f"data: .\ndata_end: {AS_OF}\nevent_roles:\n  login: [login]\n")
    r = run_cli("features", "--config", folder / "churnwatch.yaml", "--as-of", AS_OF, home=tmp_path / "home")
    assert r.returncode == 0, r.stderr[-800:]
    out = " ".join(r.stdout.split())
    assert "event types spelled several ways, each read as one type" in out
    assert "'Song Played' = 'Song Played' (4) + 'song_played' (2) + 'SONG-PLAYED' (1) + 'song played' (1)" in out
    assert "'login' = 'Login' (3) + 'LOGIN' (1)" in out
