"""Fixtures of the monitoring tests."""

import pytest

from workbench.store import Store


@pytest.fixture
def store(tmp_path):
    """A fresh workspace database (a test module may override it with a seeded one)."""
    with Store(tmp_path / "workbench.db") as s:
        yield s
