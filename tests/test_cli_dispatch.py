"""The `workbench` command's dispatch: the UI opener comes from screens/, the core only calls it."""

from __future__ import annotations

from support import experiment_with_runs

from workbench.cli import main


class Opener:
    """Records how the CLI asked for the UI (the real one is screens.launcher.open_ui)."""

    def __init__(self):
        self.calls = []

    def __call__(self, workspace=None, rate=None):
        self.calls.append((workspace, rate))
        return 0


def test_no_subcommand_opens_the_ui_on_the_named_workspace(tmp_path):
    opener = Opener()
    assert main([], open_ui=opener) == 0
    assert main(["--workspace", str(tmp_path)], open_ui=opener) == 0
    assert main([f"--workspace={tmp_path}"], open_ui=opener) == 0
    assert opener.calls == [(None, None), (str(tmp_path), None), (str(tmp_path), None)]


def test_rate_opens_the_ui_on_that_raters_session(ws):
    exp = experiment_with_runs(ws.store, 2)
    root = str(ws.workspace.root)
    ws.close()
    opener = Opener()
    assert main(["--workspace", root, "rate", str(exp.id), "--rater", "ana"], open_ui=opener) == 0
    assert opener.calls == [(root, (exp.id, "ana"))]


def test_headless_entry_point_refuses_ui_commands_in_one_line(tmp_path, capsys):
    assert main(["--workspace", str(tmp_path)]) == 2
    assert "error: no command given" in capsys.readouterr().err
    assert main(["--workspace", str(tmp_path), "rate", "1", "--rater", "ana"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: this entry point is headless") and err.count("\n") == 1
    assert not (tmp_path / "workbench.db").exists()  # refused before the workspace was opened


def test_the_workbench_command_is_the_launcher_and_hands_over_its_opener(tmp_path, monkeypatch):
    import tomllib
    from pathlib import Path

    from screens import launcher

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["workbench"] == "screens.launcher:main"
    opener = Opener()
    monkeypatch.setattr(launcher, "open_ui", opener)
    assert launcher.main(["--workspace", str(tmp_path)]) == 0
    assert opener.calls == [(str(tmp_path), None)]
