"""Environment faults of the workspace database: concurrent writers, disk full, read-only,
foreign or corrupt files, a newer database, owner-only files. Real files and real processes."""

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from support import experiment_with_runs
from workbench.store import (DiskFull, ModelRecord, NewerDatabase, NotAWorkbenchDatabase,
                             ReadOnlyWorkspace, Store)

HERE = Path(__file__).parent


def _cli(workspace: Path, *args: str, drop_root: bool = False) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "workbench", "--workspace", str(workspace), *args]
    if drop_root and os.geteuid() == 0:  # root writes anything: drop the capability that lets it
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: permissions cannot be tested")
        command = ["setpriv", "--bounding-set", "-dac_override", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _workspace_with_experiment(root: Path) -> Path:
    root.mkdir()
    with Store(root / "workbench.db") as store:
        experiment_with_runs(store, 3)
    return root


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# -- two writers at once -------------------------------------------------------------------
def test_two_processes_writing_at_once_never_see_database_is_locked(tmp_path):
    db = tmp_path / "w.db"
    with Store(db) as store:
        experiment_with_runs(store, 5)
        store.upsert_model(ModelRecord(id="fake", path="/fake.gguf"))
    go = tmp_path / "go"
    rounds = 40  # x 4 read-then-write operations x 2 processes = 320 writes
    procs = [subprocess.Popen([sys.executable, str(HERE / "concurrent_writer.py"), str(db), tag,
                               str(rounds), str(go)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
             for tag in ("p1", "p2")]
    go.touch()
    reports = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert [r["errors"] for r in reports] == [[], []]
    assert [r["done"] for r in reports] == [rounds * 4] * 2
    with Store(db) as store:
        assert store.rows("SELECT count(*) AS n FROM ratings")[0]["n"] == 2 * rounds
        assert len(store.list_variants()) == 2 + 2 * rounds


# -- disk full -----------------------------------------------------------------------------
def _fill_up(store: Store) -> None:
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")


def test_disk_full_is_a_one_line_error_and_loses_nothing(tmp_path):
    store = Store(tmp_path / "w.db")
    exp = experiment_with_runs(store, 3)
    _fill_up(store)
    big = [{"key": f"k{i}", "input": "x" * 4000} for i in range(50)]
    with pytest.raises(DiskFull, match=r"^disk full: cannot write .*w\.db \(database or disk is "
                                       r"full\); nothing from this step was stored"):
        store.save_dataset("big", big, source_path=None, sha256=None, n_rejected=0)
    assert [d["name"] for d in store.list_datasets()] == ["exp-ds"]  # rolled back, old data kept
    assert store.run_count(exp.id) == 6
    store.db.execute("PRAGMA max_page_count = 1073741823")
    store.save_dataset("big", big, source_path=None, sha256=None, n_rejected=0)  # space again
    store.close()


def test_disk_full_through_the_cli_is_one_error_line(tmp_path, monkeypatch, capsys):
    from workbench.cli import main
    from workbench.store import store as store_module

    root = _workspace_with_experiment(tmp_path / "ws")
    real_open = store_module.open_database

    def full_after_open(path, **kwargs):
        db = real_open(path, **kwargs)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        return db

    monkeypatch.setattr(store_module, "open_database", full_after_open)
    code = main(["--workspace", str(root), "datasets", "import",
                 str(_big_jsonl(tmp_path / "big.jsonl"))])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        line for line in err.splitlines() if "disk full" in line]
    assert "database or disk is full" in err


def _big_jsonl(path: Path) -> Path:
    lines = [json.dumps({"id": f"b{i}", "input": "y" * 4000}) for i in range(50)]
    path.write_text("\n".join(lines) + "\n")
    return path


# -- read-only workspace -------------------------------------------------------------------
@pytest.mark.parametrize("what", ["folder", "file"])
def test_read_only_workspace_reads_and_refuses_writes_in_one_line(tmp_path, what):
    root = _workspace_with_experiment(tmp_path / "ws")
    (root / "models").mkdir()
    (root / "datasets").mkdir()
    db = root / "workbench.db"
    os.chmod(db, 0o644)
    before = _digest(db)
    target = root if what == "folder" else db
    mode = target.stat().st_mode
    os.chmod(target, 0o555 if what == "folder" else 0o444)
    try:
        listed = _cli(root, "experiments", "list", "--json", drop_root=True)
        assert listed.returncode == 0, listed.stderr
        assert [e["name"] for e in json.loads(listed.stdout)] == ["exp"]
        assert "workspace is read-only" in listed.stderr  # said once, as a warning
        models = _cli(root, "models", "list", "--json", drop_root=True)
        assert models.returncode == 0 and json.loads(models.stdout)[0]["id"] == "fake"
        report = _cli(root, "report", "1", "--json", drop_root=True)
        assert report.returncode == 0, report.stderr
        refused = _one_error_line(_cli(root, "variants", "add", "new", "--model", "fake",
                                       drop_root=True))
        assert refused.startswith("error: workspace is read-only: ") and "not writable" in refused
    finally:
        os.chmod(target, stat.S_IMODE(mode))
    assert _digest(db) == before
    with Store(db) as store:
        assert [v.name for v in store.list_variants()] == ["exp-prod", "exp-cand"]


def test_a_store_opened_read_only_refuses_every_write(tmp_path):
    with Store(tmp_path / "w.db") as store:
        experiment_with_runs(store, 2)
    store = Store(tmp_path / "w.db", read_only=True)
    assert store.get_experiment(1).name == "exp" and store.read_only
    with pytest.raises(ReadOnlyWorkspace, match="^workspace is read-only: opened read-only$"):
        store.create_variant("x", "fake")
    with pytest.raises(ReadOnlyWorkspace):
        store.record_run({"experiment_id": 1, "item_id": 1, "variant_id": 1, "arm": "A"})
    store.close()


def test_a_missing_database_in_a_read_only_folder_is_one_line(tmp_path):
    root = tmp_path / "ro"
    for sub in ("", "models", "datasets"):
        (root / sub).mkdir(exist_ok=True)
    os.chmod(root, 0o555)
    try:
        line = _one_error_line(_cli(root, "experiments", "list", drop_root=True))
    finally:
        os.chmod(root, 0o755)
    assert line.startswith("error: workspace is read-only: cannot create ") and "workbench.db" in line
    assert not (root / "workbench.db").exists()


# -- corrupt, foreign and newer databases --------------------------------------------------
def test_random_bytes_are_not_a_workbench_database_and_stay_untouched(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    db = root / "workbench.db"
    db.write_bytes(os.urandom(8192))
    before = _digest(db)
    line = _one_error_line(_cli(root, "experiments", "list"))
    assert "workbench.db is not a workbench database (not an SQLite file)" in line
    assert _digest(db) == before and sorted(p.name for p in root.glob("workbench.db*")) == [db.name]
    with pytest.raises(NotAWorkbenchDatabase):
        Store(db)


def test_another_applications_sqlite_file_is_refused_and_stays_untouched(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    db = root / "workbench.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('ana')")
    conn.close()
    before = _digest(db)
    line = _one_error_line(_cli(root, "models", "list"))
    assert "is not a workbench database (an SQLite file of another application, tables: " \
           "customers)" in line
    assert _digest(db) == before and sorted(p.name for p in root.glob("workbench.db*")) == [db.name]


def test_a_damaged_database_is_one_line(tmp_path):
    root = _workspace_with_experiment(tmp_path / "ws")
    db = root / "workbench.db"
    data = bytearray(db.read_bytes())
    data[100:4096] = os.urandom(3996)  # the header stays, the schema page is garbage
    db.write_bytes(bytes(data))
    line = _one_error_line(_cli(root, "experiments", "list"))
    assert "workbench.db" in line and ("damaged" in line or "not a workbench database" in line)


def test_a_newer_database_is_read_but_never_written(tmp_path):
    root = _workspace_with_experiment(tmp_path / "ws")
    db = root / "workbench.db"
    with Store(db) as store:
        store.db["_sqlite_migrations"].insert({"migration_set": "workbench", "name": "m999_future",
                                               "applied_at": "2099-01-01"})
    before = _digest(db)
    listed = _cli(root, "experiments", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["name"] == "exp"
    line = _one_error_line(_cli(root, "variants", "add", "new", "--model", "fake"))
    assert line == ("error: workspace is read-only: workbench.db was created by a newer workbench "
                    "(migration m999_future); upgrade the workbench to change it")
    assert _digest(db) == before
    with pytest.raises(NewerDatabase, match="migration m999_future"):
        Store(db).set_experiment(1, status="paused")


# -- permissions ---------------------------------------------------------------------------
def test_the_database_and_its_wal_and_shm_are_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        store = Store(tmp_path / "w.db")
        experiment_with_runs(store, 2)
        files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob("w.db*")}
        store.close()
    finally:
        os.umask(old)
    assert files == {"w.db": 0o600, "w.db-wal": 0o600, "w.db-shm": 0o600}
