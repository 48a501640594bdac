"""Fixtures for the screen tests: a workspace under tmp_path and the app factory."""

from __future__ import annotations

from pathlib import Path

import pytest
from screen_support import incident_lines, write_jsonl


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A workspace folder whose datasets/ holds a 3-incident JSONL (imported when the app opens)."""
    root = tmp_path / "ws"
    write_jsonl(root / "datasets" / "incidents.jsonl", incident_lines(3))
    return root


@pytest.fixture
def make_app():
    """The app factory; after the test, asserts no exception reached the safety net."""
    from screens.app import create_app

    apps = []

    def make(root: Path, **overrides):
        app = create_app(root, **overrides)
        apps.append(app)
        return app

    yield make
    for app in apps:
        assert not app.errors, "unexpected UI exceptions:\n" + "\n".join(app.errors)

