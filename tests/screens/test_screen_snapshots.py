"""The look of each screen (pytest-textual-snapshot) on a deterministic, prefilled workspace.

Update after an intended change with: pytest tests/screens/test_screen_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest
from screen_support import prefilled_workspace, steady

from screens.app import create_app


@pytest.fixture
def prefilled(tmp_path):
    return prefilled_workspace(tmp_path)


def test_models_screen(snap_compare, prefilled, monkeypatch, tmp_path):
    # the engine column depends on whether a llama-server exists: pin it to "server x8"
    fake = tmp_path / "llama-server"
    fake.write_text("#!/bin/sh\necho 'version: 0.0.0-snapshot'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("LLAMA_SERVER", str(fake))
    app = create_app(prefilled, start_screen="models")
    assert snap_compare(app, terminal_size=(120, 40), run_before=steady(models_path=True))


def test_datasets_screen(snap_compare, prefilled):
    app = create_app(prefilled, start_screen="datasets")
    assert snap_compare(app, terminal_size=(120, 40), run_before=steady("tab", "down"))


def test_experiments_screen(snap_compare, prefilled):
    app = create_app(prefilled)
    assert snap_compare(app, terminal_size=(120, 40), run_before=steady("down"))


def test_experiments_screen_at_80x24(snap_compare, prefilled):
    app = create_app(prefilled)
    assert snap_compare(app, terminal_size=(80, 24), run_before=steady())


def test_help_on_the_experiments_screen(snap_compare, prefilled):
    app = create_app(prefilled)
    assert snap_compare(app, terminal_size=(120, 40), run_before=steady("question_mark"))


def test_new_experiment_form(snap_compare, prefilled):
    app = create_app(prefilled)
    assert snap_compare(app, terminal_size=(120, 40), run_before=steady("n"))
