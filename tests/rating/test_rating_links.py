"""Rater links (hashed tokens), the m005 migration (both-bad votes), rating settings and the
serve-rating command's refusals (no server is started here)."""

import sqlite3

import pytest

from support import experiment_with_runs
from workbench.cli import main as cli_main
from workbench.experiments.outcomes import load_ratings, preference_for
from workbench.rating.serve import is_loopback
from workbench.rating.sessions import (RatingError, next_pair, open_session, record_rating,
                                       reference_text)
from workbench.rating.tokens import (active_links, issue_token, resolve_token, revoke_tokens,
                                     token_hash)
from workbench.store import Store
from workbench.store.db import open_database
from workbench.store.migrations import MIGRATIONS


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "w.db") as s:
        yield s


def test_a_token_fixes_rater_and_experiment_and_only_its_hash_is_kept(store):
    exp = experiment_with_runs(store, 2)
    other = experiment_with_runs(store, 2, name="other")
    token = issue_token(store, exp.id, " ana ")
    assert len(token) >= 40
    grant = resolve_token(store, token)
    assert (grant.experiment_id, grant.rater) == (exp.id, "ana")
    dump = "\n".join(store.db.conn.iterdump())
    assert token not in dump and token_hash(token) in dump
    for bad in (None, "", token[:-1], token + "x", token.upper(), "x" * 1000):
        assert resolve_token(store, bad) is None
    bob = issue_token(store, other.id, "bob")
    assert resolve_token(store, bob).experiment_id == other.id
    again = issue_token(store, exp.id, "ana")  # a new link withdraws the old one
    assert resolve_token(store, token) is None and resolve_token(store, again).rater == "ana"
    assert [r["rater"] for r in active_links(store, exp.id)] == ["ana"]
    assert revoke_tokens(store, exp.id, "ana") == 1 and resolve_token(store, again) is None
    assert resolve_token(store, bob) is not None  # other experiments' links are untouched
    for name in ("", "   ", "a\x1b[2Jb", "x" * 81):
        with pytest.raises(RatingError):
            issue_token(store, exp.id, name)


def test_m005_keeps_old_ratings_and_allows_both_bad(tmp_path):
    path = tmp_path / "old.db"
    db = open_database(path, migrate=False)
    MIGRATIONS.apply(db, stop_before="m005_remote_rating")
    now = "2026-01-01"
    db["models"].insert({"id": "m", "path": "/x.gguf", "added_at": now})
    db["variants"].insert_all([{"id": v, "name": n, "model_id": "m", "created_at": now}
                               for v, n in ((1, "a"), (2, "b"))])
    db["datasets"].insert({"id": 1, "name": "d", "imported_at": now})
    db["items"].insert_all([{"id": i, "dataset_id": 1, "key": f"k{i}", "input": "x"}
                            for i in (1, 2)])
    db["experiments"].insert({"id": 1, "name": "e", "dataset_id": 1, "mode": "shadow",
                              "created_at": now})
    db["experiment_arms"].insert_all([{"experiment_id": 1, "arm": "A", "variant_id": 1},
                                      {"experiment_id": 1, "arm": "B", "variant_id": 2}])
    db["runs"].insert_all([{"experiment_id": 1, "item_id": i, "variant_id": v, "arm": arm,
                            "output": f"{arm}{i}", "created_at": now}
                           for i in (1, 2) for v, arm in ((1, "A"), (2, "B"))])
    db["rating_sessions"].insert({"id": 1, "experiment_id": 1, "rater": "ana", "seed": 1,
                                  "created_at": now})
    db["rating_assignments"].insert_all([
        {"session_id": 1, "item_id": i, "position": i - 1, "left_arm": "A", "right_arm": "B"}
        for i in (1, 2)])
    row = {"id": 1, "session_id": 1, "item_id": 1, "position": 0, "left_arm": "A",
           "right_arm": "B", "choice": "1", "preferred_arm": "A", "accuracy_1": 4,
           "notes": "kept", "created_at": now}
    db["ratings"].insert(row)
    db.conn.commit()
    with pytest.raises(sqlite3.IntegrityError):  # the old CHECK has no both_bad
        db.execute("UPDATE ratings SET choice = 'both_bad'")
    db.close()
    store = Store(path)  # applies m005
    kept = store.rows("SELECT * FROM ratings")[0]
    assert {k: kept[k] for k in row} == row
    assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert store.rows("SELECT name FROM sqlite_master WHERE name = 'ratings_by_item'")
    session = open_session(store, 1, "ana")
    assert session.id == 1 and next_pair(store, session).item_id == 2
    record_rating(store, session, 2, "both_bad")
    assert store.rows("SELECT preferred_arm FROM ratings WHERE choice = 'both_bad'") == [
        {"preferred_arm": None}]
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute("UPDATE ratings SET choice = 'maybe'")
    store.close()


def test_both_bad_counts_as_a_tie_in_the_win_rate(store):
    exp = experiment_with_runs(store, 4)
    session = open_session(store, exp.id, "ana", seed=1)
    choices = iter(["both_bad", "both_bad", "tie", "skip"])
    while (pair := next_pair(store, session)) is not None:
        record_rating(store, session, pair.item_id, next(choices))
    result = preference_for(load_ratings(store, exp.id))
    assert result.skips == 1 and result.tie_rate == pytest.approx(1.0)


def test_reference_text_for_raters():
    assert reference_text({"severity": "SEV-1", "answer": "Roll back.", "extra": [1]}) == \
        "severity: SEV-1\nanswer: Roll back."
    assert reference_text(None) is None and reference_text({"answer": " "}) is None


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.1.2.3", True),
                                            ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("192.168.1.4", False),
                                            ("example.com", False)])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_serve_rating_refuses_before_serving(tmp_path, capsys):
    from workbench.workspace import open_workspace

    root = tmp_path / "ws"
    opened = open_workspace(root, seed=False)
    exp = experiment_with_runs(opened.store, 2)
    empty = opened.store.create_experiment("empty", exp.dataset_id, exp.arms)
    opened.close()
    base = ["--workspace", str(root), "serve-rating"]
    cases = [
        ([str(exp.id), "--rater", "ana", "--host", "0.0.0.0"], "--allow-remote"),
        ([str(exp.id)], "pass --rater NAME"),
        ([str(empty.id), "--rater", "ana"], "nothing to rate yet"),
        (["999", "--rater", "ana"], "999"),
        ([str(exp.id), "--rater", "ana", "--port", "70000"], "between 0 and 65535"),
        ([str(exp.id), "--rater", " "], "rater name is required"),
    ]
    for args, message in cases:
        assert cli_main(base + args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and "Traceback" not in err, err
    with Store(root / "workbench.db") as store:
        assert store.rows("SELECT * FROM rating_tokens") == []  # no link issued by a refusal
