"""`workbench report EXP --by feature|category`: the overall report, then one section per group."""

from __future__ import annotations

import json

import pytest
from breakdown_support import mixed_workspace

from workbench.cli import main

EVIL = "evil\x1b]0;pwned\x07\x1b[2J\x9b31m\r"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return mixed_workspace(tmp_path_factory.mktemp("cli") / "ws")


def run(root, capsys, *argv):
    code = main(["--workspace", str(root), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_report_by_feature_prints_the_report_then_every_group(mixed, capsys):
    root, exp_id = mixed
    code, plain, _ = run(root, capsys, "report", str(exp_id))
    assert code == 0 and "Per-feature" not in plain and "exploratory)" not in plain
    code, out, err = run(root, capsys, "report", str(exp_id), "--by", "feature")
    assert code == 0, err
    assert out.startswith(plain.rstrip("\n") + "\n\nPer-feature results: 3 group(s)\nnote: "
                          "exploratory: the per-feature verdicts sit beside the overall verdict")
    groups = out.split("\n== feature ")[1:]
    assert [g.split(":")[0] for g in groups] == ["incident", "audit", "code"]
    for section in groups[:2]:
        assert "Verdict (exploratory): " in section and "Holm across 2 group(s)" in section
        for name in ("Accuracy (severity correct)", "Safety failures", "p95 latency",
                     "Error rate", "Expert rating (accuracy)", "Items per arm",
                     "Primary metric significant (accuracy)"):
            assert name in section
        assert "p95 ms" in section and "blind votes" in section and "rater agreement" in section
    assert "Verdict (exploratory): too few items (n=3)" in groups[2]
    code, out, _ = run(root, capsys, "report", str(exp_id), "--by", "feature", "--min-items", "3")
    assert "too few items (n=" not in out and out.count("Holm across 3 group(s)") == 3


def test_report_by_json_adds_the_breakdown_to_the_same_report(mixed, capsys):
    from workbench.experiments.breakdown import breakdown
    from workbench.store import Store

    root, exp_id = mixed
    _, plain, _ = run(root, capsys, "report", str(exp_id), "--json")
    code, out, _ = run(root, capsys, "report", str(exp_id), "--by", "category", "--json")
    assert code == 0
    overall, grouped = json.loads(plain), json.loads(out)
    assert set(grouped) == set(overall) | {"breakdown"}
    assert grouped["verdict"] == overall["verdict"]
    with Store(root / "workbench.db") as store:
        direct = breakdown(store, exp_id, "category")
    got = grouped["breakdown"]
    assert got["by"] == "category" and "exploratory" in got["note"]
    assert [(g["group"], g["items"], g["too_few"]) for g in got["groups"]] == \
        [(g["group"], g["items"], g["too_few"]) for g in direct["groups"]]
    assert [g["group"] for g in got["groups"]][-1] == "(none)"
    for g, d in zip(got["groups"], direct["groups"]):
        assert g["report"]["verdict"] == d["report"]["verdict"]
        assert g["primary_holm"] == d["primary_holm"]


def test_report_by_markdown_and_mistakes(mixed, capsys):
    root, exp_id = mixed
    code, out, _ = run(root, capsys, "report", str(exp_id), "--by", "category", "--markdown")
    assert code == 0 and "\n# Per-category results\n" in out and "## category (none): " in out
    code, _, err = run(root, capsys, "report", str(exp_id), "--by", "user")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    code, _, err = run(root, capsys, "report", str(exp_id), "--by", "feature", "--min-items", "0")
    assert code == 2 and err.startswith("error: ")


def test_a_hostile_category_never_reaches_the_terminal_raw(tmp_path, capsys):
    from support import experiment_with_runs

    from workbench.workspace import open_workspace

    opened = open_workspace(tmp_path / "ws", seed=False)
    exp = experiment_with_runs(opened.store, 3, name="x")
    opened.store.db.execute("UPDATE items SET category = ?", [EVIL])
    opened.close()
    for form in ([], ["--markdown"]):
        code, out, err = run(tmp_path / "ws", capsys, "report", str(exp.id), "--by", "category",
                             *form)
        assert code == 0, err
        assert not any(c in out for c in "\x1b\x07\x9b\r") and "\\x1b]0;pwned" in out
    code, out, _ = run(tmp_path / "ws", capsys, "report", str(exp.id), "--by", "category", "--json")
    groups = json.loads(out)["breakdown"]["groups"]
    assert groups[0]["group"] == EVIL.strip()  # the raw text, trimmed as categories are
