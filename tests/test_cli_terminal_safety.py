"""Names, ids and texts with escape sequences never reach the terminal raw through the CLI;
`--json` stays JSON that reads back to the very same text."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support import REPO, experiment_with_runs
from workbench.cli import main
from workbench.cli.output import print_table, to_json

EVIL = "evil\x1b]0;pwned\x07\x1b[2J\x9b31m\r"


def run(root, capsys, *argv):
    code = main(["--workspace", str(root), *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def hostile(ws):
    """A workspace whose variant, dataset, item id, experiment name and answers hold escapes."""
    exp = experiment_with_runs(ws.store, 2, name=EVIL, outputs=lambda item, arm: f"{EVIL} {arm}")
    ws.store.save_dataset("evil-items", [{"key": EVIL, "input": f"incident {EVIL}\nline 2",
                                         "reference": {"severity": "SEV-1", "root_cause": EVIL}}],
                          source_path=None, sha256=None, n_rejected=0)
    from workbench.rating.sessions import open_session

    open_session(ws.store, exp.id, EVIL)  # a rater name that came in through another door
    ws.close()
    return ws.workspace.root, exp


@pytest.mark.parametrize("argv", [
    ["variants", "list"], ["datasets", "list"], ["datasets", "show", "evil-items"],
    ["experiments", "list"], ["report", "1"],
    ["report", "1", "--markdown"], ["ratings", "list", "1"],
    ["datasets", "show", EVIL],  # the error message quotes the unknown name
])
def test_no_escape_byte_reaches_the_terminal(hostile, capsys, argv):
    root, _ = hostile
    code, out, err = run(root, capsys, *argv)
    assert code in (0, 2), err
    for text in (out, err):
        assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
        assert "\r" not in text
    assert "\\x1b]0;pwned" in out + err  # shown, visibly escaped


@pytest.mark.parametrize("argv", [["variants", "list", "--json"], ["experiments", "list", "--json"],
                                  ["datasets", "show", "evil-items", "--json"]])
def test_json_output_escapes_controls_and_round_trips(hostile, capsys, argv):
    root, _ = hostile
    code, out, _ = run(root, capsys, *argv)
    assert code == 0
    assert not any(c in out for c in "\x1b\x07\x9b\r")
    assert any(EVIL in text for text in _strings(json.loads(out)))  # the raw value, unchanged


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_to_json_escapes_c1_and_bidi_that_json_dumps_leaves_raw():
    value = {"name": "a\x9b2J\u202eb\x7f", "n": 1}
    assert "\x9b" in json.dumps(value, ensure_ascii=False)  # why to_json exists
    text = to_json(value)
    assert not any(c in text for c in "\x9b\u202e\x7f") and json.loads(text) == value


def test_print_table_escapes_every_cell_and_header(capsys):
    print_table(("id", "na\x1bme"), [(1, EVIL), (None, "ok")])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "-" in out.splitlines()[-1]


def test_listed_by_the_real_cli_in_a_subprocess(hostile):
    root, _ = hostile
    proc = subprocess.run([sys.executable, "-m", "workbench", "--workspace", str(root),
                           "datasets", "show", "evil-items"], capture_output=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert b"\x1b" not in proc.stdout + proc.stderr and b"\x07" not in proc.stdout
    assert b"\\x1b]0;pwned\\x07\\x1b[2J" in proc.stdout
