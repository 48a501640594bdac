"""Per-rater consistency: leave-one-out agreement, the outlier test, side bias, from the DB."""

import random

import pytest

from support import experiment_with_runs
from workbench.rating.consistency import consistency_for, rater_consistency, vote_outcome
from workbench.rating.sessions import next_pair, open_session, record_rating
from workbench.store import Store


def vote(rater, item, preferred, *, left=None, seconds=None):
    """A vote for arm ``preferred`` ('A', 'B', 'tie', 'both_bad' or 'skip'), A on the left
    for even items unless ``left`` says otherwise."""
    left = left or ("A" if item % 2 == 0 else "B")
    right = "B" if left == "A" else "A"
    choice = {left: "1", right: "2"}.get(preferred, preferred)
    return {"rater": rater, "item": item, "left": left, "right": right, "choice": choice,
            "seconds": seconds}


def by_rater(result):
    return {r.rater: r for r in result}


def test_vote_outcomes_map_sides_back_to_arms():
    assert vote_outcome({"choice": "1", "left": "B", "right": "A"}) == "B"
    assert vote_outcome({"choice": "2", "left": "B", "right": "A"}) == "A"
    assert vote_outcome({"choice": "both_bad", "left": "B", "right": "A"}) == "none"
    assert vote_outcome({"choice": "tie", "left": "A", "right": "B"}) == "none"
    assert vote_outcome({"choice": "skip", "left": "A", "right": "B"}) is None


def test_a_contrarian_rater_is_the_only_outlier():
    rng = random.Random(5)
    truth = [rng.choice("AB") for _ in range(24)]
    votes = []
    for rater in ("ana", "bram", "chen"):
        for item, arm in enumerate(truth):
            noisy = arm if rng.random() > 0.1 else ("B" if arm == "A" else "A")
            votes.append(vote(rater, item, noisy))
    for item, arm in enumerate(truth):  # dev votes against the panel on most items
        votes.append(vote("dev", item, arm if item % 6 == 0 else ("B" if arm == "A" else "A")))
    result = by_rater(rater_consistency(votes))
    assert result["dev"].outlier and result["dev"].p_value < 0.001
    assert result["dev"].agreement < 0.3
    for rater in ("ana", "bram", "chen"):
        assert not result[rater].outlier, result[rater]
        assert result[rater].agreement > 0.5 and result[rater].p_value > 0.05
    # dev is not part of the yardstick it is measured against
    assert result["dev"].baseline > 0.75


def test_agreement_by_hand_with_ties_both_bad_and_skips():
    votes = [
        vote("ana", 0, "A"), vote("bob", 0, "A"), vote("cy", 0, "B"),
        vote("ana", 1, "tie"), vote("bob", 1, "both_bad"), vote("cy", 1, "both_bad"),
        vote("ana", 2, "B"), vote("bob", 2, "A"), vote("cy", 2, "skip"),
        vote("ana", 3, "skip"), vote("bob", 3, "B"), vote("cy", 3, "B"),
    ]
    result = by_rater(rater_consistency(votes))
    # ana: item 0 others A/B (no majority), item 1 others none/none -> tie agrees, item 2 others
    # A (cy skipped) -> ana's B disagrees; item 3 skipped by ana
    assert (result["ana"].votes, result["ana"].compared) == (3, 2)
    assert result["ana"].agreement == pytest.approx(0.5)
    # bob: item 0 others A/B none; item 1 none/none agree; item 2 ana B -> A disagrees; item 3 cy B
    assert (result["bob"].compared, result["bob"].agreement) == (3, pytest.approx(2 / 3))
    # ana's baseline: bob vs cy and cy vs bob (item 0 differs, items 1 and 3 agree, item 2
    # only bob voted): 4 hits of 6, smoothed (4 + 1) / (6 + 2)
    assert result["ana"].baseline == pytest.approx(5 / 8)
    assert not any(r.outlier for r in result.values())  # too few items to call anyone


def test_two_raters_have_an_agreement_but_no_outlier_test():
    votes = [vote(r, i, "A") for r in ("ana", "bob") for i in range(10)]
    votes[-1] = vote("bob", 9, "B")
    result = by_rater(rater_consistency(votes))
    assert result["ana"].agreement == pytest.approx(0.9) == result["bob"].agreement
    assert result["ana"].baseline is None and result["ana"].p_value is None
    assert not result["ana"].outlier


def test_a_rater_who_always_presses_1_shows_a_side_bias():
    votes = []
    for item in range(12):
        left = "A" if item % 2 == 0 else "B"
        votes.append({"rater": "lazy", "item": item, "left": left,
                      "right": "B" if left == "A" else "A", "choice": "1", "seconds": 0.4})
        votes.append(vote("ana", item, "A", seconds=20.0 + item))
    result = by_rater(rater_consistency(votes))
    assert result["lazy"].left_share == 1.0 and result["lazy"].side_biased
    assert result["lazy"].left_p < 0.001 and result["lazy"].median_seconds == 0.4
    assert result["ana"].left_share == 0.5 and not result["ana"].side_biased
    assert result["ana"].median_seconds == pytest.approx(25.5)


def test_consistency_from_stored_sessions(tmp_path):
    with Store(tmp_path / "w.db") as store:
        exp = experiment_with_runs(store, 8)
        for rater, contrary in (("ana", False), ("bob", False), ("cy", False), ("dev", True)):
            session = open_session(store, exp.id, rater)
            while (pair := next_pair(store, session)) is not None:
                a_left = pair.response_1.startswith("alpha")
                wants_a = not contrary
                record_rating(store, session, pair.item_id, "1" if a_left == wants_a else "2",
                              seconds=3.0)
        result = by_rater(consistency_for(store, exp.id))
    assert set(result) == {"ana", "bob", "cy", "dev"}
    assert result["ana"].agreement == 1.0 and result["dev"].agreement == 0.0
    assert result["dev"].outlier and not result["ana"].outlier
    assert result["dev"].votes == 8 and result["dev"].median_seconds == 3.0
