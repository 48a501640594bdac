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


# -- --workspace: a missing folder is refused (or made with --create); accepted after the command
def test_missing_workspace_is_refused_and_nothing_is_created(tmp_path, capsys):
    missing = tmp_path / "typo"
    for argv in (["--workspace", str(missing), "models", "list"],
                 ["models", "list", "--workspace", str(missing)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == f"error: workspace {missing} does not exist (add --create to make it)\n"
    assert not missing.exists()
    opener = Opener()
    assert main(["--workspace", str(missing)], open_ui=opener) == 2  # the UI path refuses too
    assert opener.calls == [] and not missing.exists()
    assert "does not exist" in capsys.readouterr().err


def test_create_makes_the_workspace_before_or_after_the_command(tmp_path, capsys):
    first, second = tmp_path / "a" / "ws", tmp_path / "b"
    assert main(["--workspace", str(first), "--create", "variants", "list"]) == 0
    assert main(["variants", "list", "--workspace", str(second), "--create"]) == 0
    assert (first / "workbench.db").is_file() and (second / "workbench.db").is_file()
    assert "prod-triage" in capsys.readouterr().out
    opener = Opener()
    third = tmp_path / "c"
    assert main(["--workspace", str(third), "--create"], open_ui=opener) == 0
    assert third.is_dir() and opener.calls == [(str(third), None)]


def test_workspace_after_the_subcommand_is_the_one_used(ws, tmp_path, capsys, monkeypatch):
    import json

    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # were --workspace ignored, the cwd would become the workspace
    root = str(ws.workspace.root)
    ws.store.create_variant("only-here", "smollm2-135m-instruct-q4_1")
    for argv in (["variants", "list", "--json", "--workspace", root],
                 ["variants", "--workspace", root, "list", "--json"],
                 ["--workspace", root, "variants", "list", "--json"]):
        assert main(argv) == 0
        names = [v["name"] for v in json.loads(capsys.readouterr().out)]
        assert "only-here" in names
    assert not (elsewhere / "workbench.db").exists()


def test_workspace_that_is_a_file_or_a_missing_env_home(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "f"
    afile.write_text("x")
    assert main(["--workspace", str(afile), "models", "list"]) == 2
    assert capsys.readouterr().err == f"error: workspace {afile} is not a folder\n"
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "gone"))
    assert main(["models", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: workspace {tmp_path / 'gone'} (from $WORKBENCH_HOME) does not")


def test_help_and_usage_errors_return_instead_of_raising(tmp_path, capsys):
    assert main(["models", "list", "--help"]) == 0
    assert "--workspace DIR" in capsys.readouterr().out  # every subcommand documents it
    assert main(["--workspace", str(tmp_path), "variants", "add", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: one of the arguments --model --endpoint is required")
    assert err.count("\n") == 1 and "usage:" not in err
