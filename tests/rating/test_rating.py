"""Blind rating sessions and evaluation sheets on a real SQLite store."""

import csv
from collections import Counter

import pytest

from support import experiment_with_runs
from workbench.rating.sessions import (RatingError, next_pair, open_session, plan_sides, progress,
                                       record_rating, undo_last)
from workbench.rating.sheets import COLUMNS, SheetRejected, export_sheet, import_sheet
from workbench.store import Store


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "w.db") as s:
        yield s


@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_sides_are_balanced_in_every_prefix(n):
    plan = plan_sides(list(range(n)), seed=11)
    assert sorted(i for i, _ in plan) == list(range(n))
    for k in range(1, n + 1):
        left = Counter(side for _, side in plan[:k])
        assert abs(left["A"] - left["B"]) <= 1


def test_order_is_seeded_and_differs_between_raters(store):
    exp = experiment_with_runs(store, 12)
    one = open_session(store, exp.id, "ana", seed=1)
    same = [r["item_id"] for r in store.rows(
        "SELECT item_id FROM rating_assignments WHERE session_id = ? ORDER BY position", [one.id])]
    assert [i for i, _ in plan_sides(sorted(same), 1)] == same
    two = open_session(store, exp.id, "bram", seed=2)
    other = [r["item_id"] for r in store.rows(
        "SELECT item_id FROM rating_assignments WHERE session_id = ? ORDER BY position", [two.id])]
    assert sorted(other) == sorted(same) and other != same


def test_pair_view_hides_identities_and_maps_choices_back(store):
    exp = experiment_with_runs(store, 6)
    session = open_session(store, exp.id, "ana", seed=3)
    seen = Counter()
    while (pair := next_pair(store, session)) is not None:
        text = " ".join(map(str, vars(pair).values()))
        assert "exp-prod" not in text and "exp-cand" not in text and "fake" not in text
        assert "latency" not in text and "100.0" not in text
        left = store.rows("SELECT left_arm FROM rating_assignments WHERE session_id=? AND item_id=?",
                          [session.id, pair.item_id])[0]["left_arm"]
        # response 1 is exactly the answer of the arm planned on the left
        assert pair.response_1.startswith("alpha" if left == "A" else "omega")
        assert pair.response_2.startswith("omega" if left == "A" else "alpha")
        seen[left] += 1
        record_rating(store, session, pair.item_id, "1", accuracy_1=4, safety_1=5,
                      accuracy_2=2, safety_2=3, seconds=1.5)
    assert seen == {"A": 3, "B": 3}
    ratings = store.rows("SELECT * FROM ratings WHERE session_id = ?", [session.id])
    assert Counter(r["preferred_arm"] for r in ratings) == {"A": 3, "B": 3}
    assert all(r["preferred_arm"] == r["left_arm"] for r in ratings)
    assert store.rows("SELECT completed_at FROM rating_sessions WHERE id = ?",
                      [session.id])[0]["completed_at"]


def test_undo_resume_and_validation(store):
    exp = experiment_with_runs(store, 4)
    session = open_session(store, exp.id, "ana")
    first = next_pair(store, session)
    record_rating(store, session, first.item_id, "tie")
    second = next_pair(store, session)
    record_rating(store, session, second.item_id, "skip")
    assert progress(store, session) == (1, 1, 4)  # the skip is stored but is not a rating
    assert progress(store, session).done == 2
    assert undo_last(store, session) == second.item_id
    resumed = open_session(store, exp.id, "ana")  # a new app start resumes the same session
    assert resumed.id == session.id and next_pair(store, resumed).item_id == second.item_id
    with pytest.raises(RatingError, match="between 1 and 5"):
        record_rating(store, session, second.item_id, "1", accuracy_1=7)
    with pytest.raises(RatingError, match="choice"):
        record_rating(store, session, second.item_id, "left")
    with pytest.raises(RatingError, match="already rated"):
        record_rating(store, session, first.item_id, "1")


def test_only_items_answered_by_both_arms_are_rated(store):
    exp = experiment_with_runs(store, 3)
    store.db.execute("UPDATE runs SET error = 'boom' WHERE arm = 'B' AND item_id = "
                     "(SELECT min(item_id) FROM runs)")
    assert progress(store, open_session(store, exp.id, "ana")).total == 2


def write_sheet(path, rows) -> None:
    """Write a filled-in sheet back, as an expert's spreadsheet would."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_sheet_round_trip_with_bad_rows_and_a_second_expert(store, tmp_path):
    exp = experiment_with_runs(store, 5)
    sheet = tmp_path / "sheet.csv"
    assert export_sheet(store, exp.id, sheet) == 5
    text = sheet.read_text()
    assert "exp-prod" not in text and "exp-cand" not in text and ",A," not in text
    assert "fake" not in text
    rows = list(csv.DictReader(sheet.open()))
    assert tuple(rows[0]) == COLUMNS
    rows[0].update(choice="1", accuracy_1="5", safety_1="5", accuracy_2="2", safety_2="4")
    rows[1].update(choice="maybe")
    rows[2].update(choice="2", accuracy_2="9")
    rows[3].update(choice="tie", notes="both fine")
    rows[4].update(item="inc-999", choice="1")
    write_sheet(sheet, rows)
    sessions_before = store.rows("SELECT count(*) AS n FROM rating_sessions")[0]["n"]
    with pytest.raises(SheetRejected, match=r"line 3: item 'inc-00\d': choice .*'maybe'.*"
                                            r"2 more bad row\(s\): lines 4, 6.*nothing was imported"):
        import_sheet(store, exp.id, sheet)
    with pytest.raises(SheetRejected) as rejected:  # another rater: no session is left behind
        import_sheet(store, exp.id, sheet, rater="dr-lee")
    assert [line for line, _ in rejected.value.errors] == [3, 4, 6]
    assert "between 1 and 5" in rejected.value.errors[1][1] and "unknown" in rejected.value.errors[2][1]
    assert store.rows("SELECT count(*) AS n FROM ratings")[0]["n"] == 0
    assert store.rows("SELECT count(*) AS n FROM rating_sessions")[0]["n"] == sessions_before
    for row in rows[2:3] + rows[4:]:
        row.update(choice="")  # the bad rows left blank: the rest imports
    rows[1].update(choice="both bad")  # the "both bad" vote is accepted on sheets too
    write_sheet(sheet, rows)
    result = import_sheet(store, exp.id, sheet)
    assert (result.imported, result.blank, result.errors) == (3, 2, [])
    assert store.rows("SELECT count(*) AS n FROM ratings WHERE choice = 'both_bad'")[0]["n"] == 1
    second = import_sheet(store, exp.id, sheet, rater="dr-lee")
    assert second.rater == "dr-lee" and second.imported == 3
    by_rater = store.rows("""SELECT s.rater, r.item_id, r.left_arm FROM ratings r
                             JOIN rating_sessions s ON s.id = r.session_id ORDER BY r.item_id""")
    sides = {}
    for row in by_rater:
        assert sides.setdefault(row["item_id"], row["left_arm"]) == row["left_arm"]


def test_sheet_cells_that_look_like_formulas_are_neutralised_and_read_back(store, tmp_path):
    outputs = {"A": "=HYPERLINK(\"http://evil\",\"click\")", "B": "-rm -rf / is never the answer"}
    exp = experiment_with_runs(store, 2, outputs=lambda item, arm: outputs[arm] + item.key)
    store.db.execute("UPDATE items SET key = '@' || key WHERE dataset_id = ?", [exp.dataset_id])
    store.db.conn.commit()
    sheet = tmp_path / "sheet.csv"
    export_sheet(store, exp.id, sheet)
    rows = list(csv.DictReader(sheet.open()))
    for row in rows:
        for column in ("item", "incident", "response_1", "response_2"):
            assert not row[column].startswith(("=", "+", "-", "@", "\t", "\r")), row[column]
        assert row["item"].startswith("'@inc-")
        assert {row["response_1"][:2], row["response_2"][:2]} == {"'=", "'-"}
    rows[0].update(choice="1", notes="=1+1 looks fine")
    write_sheet(sheet, rows)
    result = import_sheet(store, exp.id, sheet)
    assert result.imported == 1 and not result.errors  # the '@inc-000 key maps back
    note = store.rows("SELECT notes FROM ratings")[0]["notes"]
    assert note == "=1+1 looks fine"
