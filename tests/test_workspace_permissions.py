"""Workspace folders the workbench creates are owner-only (0700); folders the user made keep
their mode."""

import os
import stat

import pytest

from workbench.config import Workspace, make_private_dir


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def wide_umask():
    old = os.umask(0o022)  # the usual umask: plain mkdir would give 0755
    yield
    os.umask(old)


def test_new_workspace_folders_are_owner_only(tmp_path, wide_umask):
    root = tmp_path / "new" / "ws"
    Workspace(root).ensure()
    for path in (root, root / "models", root / "datasets"):
        assert _mode(path) == 0o700, path


def test_an_existing_folder_keeps_its_mode(tmp_path, wide_umask):
    root = tmp_path / "repo"  # e.g. the repository root, made by the user
    (root / "datasets").mkdir(parents=True)
    os.chmod(root, 0o755)
    os.chmod(root / "datasets", 0o775)
    Workspace(root).ensure()
    assert _mode(root) == 0o755 and _mode(root / "datasets") == 0o775
    assert _mode(root / "models") == 0o700  # the one the workbench made


def test_make_private_dir_says_whether_it_created(tmp_path, wide_umask):
    assert make_private_dir(tmp_path / "a") is True
    assert make_private_dir(tmp_path / "a") is False
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        make_private_dir(tmp_path / "file")


def test_rating_sheets_and_private_files_are_owner_only(tmp_path):
    from support import experiment_with_runs

    from workbench.private_files import open_private
    from workbench.rating.sheets import export_sheet
    from workbench.store import Store

    with Store(tmp_path / "wb.db") as store:
        exp = experiment_with_runs(store, 2)
        sheet = tmp_path / "sheet.csv"
        sheet.write_text("old")
        sheet.chmod(0o644)
        assert export_sheet(store, exp.id, sheet) == 2
    assert _mode(sheet) == 0o600  # an existing, wider file is tightened too
    log = tmp_path / "job.log"
    with open_private(log, "a") as handle:
        handle.write("line\n")
    with open_private(log, "a") as handle:
        handle.write("more\n")
    assert _mode(log) == 0o600 and log.read_text() == "line\nmore\n"
