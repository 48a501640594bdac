"""Possible identity leaks: flagged for the operator, optionally left out, never shown to raters."""

import pytest

from support import experiment_with_runs
from workbench.cli import main as cli_main
from workbench.rating.identity_leaks import find_leaks, find_terms, leaky_items
from workbench.rating.sessions import next_pair, open_session, progress, record_rating
from workbench.rating.settings import get_settings, update_settings
from workbench.store import Store

LEAKY = {0: "As SmolLM, I would restart the consumer.",
         1: "I am an AI assistant developed by a research lab; scale the queue workers.",
         3: "The fake model suggests draining the queue."}  # 'fake' is the experiment's model id


@pytest.mark.parametrize("text, term", [
    ("As SmolLM2, I suggest a rollback.", "SmolLM2"),
    ("I'm a large language model trained by Google.", "I'm a large language model trained by"),
    ("This answer comes from OpenAI's guidance.", "OpenAI"),
    ("Anthropic's Claude would say so too.", "Anthropic"),
    ("Qwen2.5 thinks the disk is full.", "Qwen2.5"),
    ("Built on Llama 3 by Meta.", "Llama 3"),
    ("Gemma and HuggingFace agree.", "Gemma"),
])
def test_model_and_vendor_names_are_found(text, term):
    assert find_terms(text)[0][0] == term


@pytest.mark.parametrize("text", [
    "Check the metadata service and restart the llama-server unit.",
    "As an on-call engineer, first page the database owner.",
    "The phi coefficient is small; the falcon job runs hourly.",
])
def test_ordinary_incident_answers_are_not_flagged(text):
    assert find_terms(text) == []


def outputs(item, arm):
    number = int(item.key.split("-")[1])
    if arm == "B" and number in LEAKY:
        return LEAKY[number]
    return f"{'alpha' if arm == 'A' else 'omega'} answer {item.key}"


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "w.db") as s:
        yield s


def test_leaks_are_listed_with_the_arm_and_a_term_the_incident_has_is_not_one(store):
    exp = experiment_with_runs(store, 6, name="leak", outputs=outputs)
    quoted = store.items(exp.dataset_id)[4]  # the incident itself mentions OpenAI: no leak
    store.db.execute("UPDATE items SET input = 'OpenAI key sk-FAKE seen in logs' WHERE id = ?",
                     [quoted.id])
    store.db.execute("UPDATE runs SET output = 'Rotate the OpenAI key.' WHERE item_id = ?",
                     [quoted.id])
    leaks = find_leaks(store, exp.id)
    assert [(leak.item_key, leak.arm) for leak in leaks] == [
        ("inc-000", "B"), ("inc-001", "B"), ("inc-003", "B")]
    assert [leak.term for leak in leaks][0] == "SmolLM" and "fake" in leaks[2].term
    assert "SmolLM" in leaks[0].excerpt


def test_excluded_leaks_never_reach_a_rater_and_the_flag_is_never_shown(store):
    exp = experiment_with_runs(store, 6, name="leak", outputs=outputs)
    flagged = leaky_items(store, exp.id)
    assert len(flagged) == 3 and get_settings(store, exp.id).exclude_leaks is False
    shown = open_session(store, exp.id, "ana", seed=1)  # default: rated like any other
    assert progress(store, shown).total == 6
    pair = next_pair(store, shown)
    assert not {"leak", "flag", "identity"} & {name.lower() for name in vars(pair)}
    record_rating(store, shown, pair.item_id, "1")
    update_settings(store, exp.id, exclude_leaks=True)
    # a session planned before: its unrated flagged items drop out, its ratings stay
    counts = progress(store, shown)
    assert counts.total == 3 + (pair.item_id in flagged) and counts.rated == 1
    fresh = open_session(store, exp.id, "bob", seed=2)  # planned after: never includes them
    planned = {r["item_id"] for r in store.rows(
        "SELECT item_id FROM rating_assignments WHERE session_id = ?", [fresh.id])}
    assert planned and not planned & flagged
    seen = []
    for session in (shown, fresh):
        while (p := next_pair(store, session)) is not None:
            seen.append(p.item_id)
            assert "SmolLM" not in p.response_1 + p.response_2
            record_rating(store, session, p.item_id, "tie")
    assert not set(seen) & flagged


def test_the_leaks_and_settings_commands(tmp_path, capsys):
    from workbench.workspace import open_workspace

    root = tmp_path / "ws"
    opened = open_workspace(root, seed=False)
    exp = experiment_with_runs(opened.store, 4, name="leak", outputs=outputs)
    opened.close()
    assert cli_main(["--workspace", str(root), "ratings", "leaks", str(exp.id)]) == 0
    out = capsys.readouterr().out
    assert "inc-000" in out and "SmolLM" in out and "3 item(s) flagged" in out
    assert cli_main(["--workspace", str(root), "ratings", "settings", str(exp.id),
                     "--exclude-leaks", "--show-reference", "--json"]) == 0
    assert '"exclude_leaks": true' in capsys.readouterr().out
    with Store(root / "workbench.db") as store:
        assert get_settings(store, exp.id).show_reference is True
    assert cli_main(["--workspace", str(root), "ratings", "leaks", str(exp.id)]) == 0
    assert "left out of rating sessions" in capsys.readouterr().out
