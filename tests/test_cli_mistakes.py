"""A new user's CLI mistakes: each is one `error: …` line on stderr, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from support import REPO, experiment_with_runs
from workbench.cli import main

MODEL = "smollm2-135m-instruct-q4_1"
EVIL = "x\x1b]0;pwned\x07\x1b[2J"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One workspace for the whole module, with an experiment (1) and a chat JSONL."""
    from workbench.workspace import open_workspace

    root = tmp_path_factory.mktemp("mistakes") / "ws"
    opened = open_workspace(root)
    experiment_with_runs(opened.store, 2)
    opened.close()
    (root / "chat.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, '
                                     '{"role": "assistant", "content": "hello"}]}\n')
    (root / "empty.jsonl").write_text("")
    (root / "a-file").write_text("not a folder")
    return root


def one_line_error(code: int, err: str, fragment: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], err
    assert "\x1b" not in err and "\x07" not in err
    return lines[0]


MISTAKES = [
    # the command line itself
    (["modles", "list"], "invalid choice: 'modles'"),
    (["models"], "required: {list,add,show,set,bench}"),
    (["models", "list", "--bogus"], "unrecognized arguments: --bogus"),
    # models
    (["models", "set", MODEL, "--threads", "0"], "argument --threads: must be >= 1, got '0'"),
    (["models", "set", MODEL, "--threads", "-2"], "argument --threads: must be >= 1"),
    (["models", "set", MODEL, "--n-ctx", "abc"], "--n-ctx: expected a context size in tokens"),
    (["models", "set", MODEL, "--n-ctx", "0"], "--n-ctx: must be >= 16"),
    (["models", "set", MODEL, "--n-gpu-layers", "-5"], "--n-gpu-layers: must be >= -1"),
    (["models", "set", MODEL, "--server-slots", "0"], "--server-slots: must be >= 1"),
    (["models", "add", "{root}/missing.gguf"], "argument path: no such file"),
    (["models", "show", "nope"], "no model 'nope'"),
    # datasets
    (["datasets", "show", "exp-ds", "--limit", "0"], "argument --limit: must be >= 1"),
    (["datasets", "import", "{root}/missing.jsonl"], "no such file"),
    (["datasets", "import", "{root}"], "not a regular file"),
    # variants
    (["variants", "add", "v", "--model", MODEL, "--max-tokens", "0"], "--max-tokens: must be >= 1"),
    (["variants", "add", "v", "--model", MODEL, "--temperature", "2.5"],
     "--temperature: must be >= 0 and <= 2"),
    (["variants", "add", "v", "--model", MODEL, "--temperature", "-0.1"], "--temperature: must be"),
    (["variants", "add", "v", "--model", MODEL, "--temperature", "warm"],
     "--temperature: expected a number"),
    (["variants", "add", "v", "--model", MODEL, "--temperature", "nan"],
     "--temperature: expected a number"),
    (["variants", "add", "v", "--model", MODEL, "--top-p", "0"], "--top-p: must be > 0 and <= 1"),
    (["variants", "add", "v", "--model", MODEL, "--json-schema", "{root}/none.json"],
     "--json-schema: no such file"),
    (["variants", "add", "v", "--model", MODEL, "--lora", "{root}/none.gguf"],
     "--lora: no such file"),
    (["variants", "add", EVIL, "--model", MODEL], "holds control or format characters"),
    (["variants", "add", "a\u202eb", "--model", MODEL], "holds control or format characters"),
    (["variants", "add", "  ", "--model", MODEL], "a name cannot be empty"),
    (["variants", "add", "v", "--model", "nope"], "no model 'nope'"),
    # endpoints
    (["endpoints", "add", "e", "--base-url", "http://x", "--concurrency", "0"],
     "--concurrency: must be >= 1"),
    (["endpoints", "add", "e\x07", "--base-url", "http://x"], "control or format characters"),
    # replay and report
    (["replay", "exp-ds", "--a", "exp-prod", "--b", "exp-cand", "--limit", "0"],
     "--limit: must be >= 1, got '0'"),
    (["replay", "exp-ds", "--a", "exp-prod", "--b", "exp-cand", "--limit", "-3"], "--limit"),
    (["replay", "exp-ds", "--a", "exp-prod", "--b", "exp-cand", "--weight-b", "1.5"],
     "--weight-b: must be >= 0 and <= 1"),
    (["replay", "exp-ds", "--a", "exp-prod", "--b", "exp-cand", "--concurrency", "0"],
     "--concurrency: must be >= 1"),
    (["replay", "exp-ds", "--a", "exp-prod", "--b", "exp-cand", "--name", EVIL],
     "control or format characters"),
    (["replay", "exp-ds", "--a", "exp-prod", "--b", "nope"], "neither a variant nor a model"),
    (["report", "1", "--price-per-1k", "-0.5"], "--price-per-1k: must be >= 0"),
    (["report", "99"], "no experiment"),
    # criteria and lifecycle
    (["experiments", "criteria", "1", "--set", "alpha=abc"], "alpha must be a number, not 'abc'"),
    (["experiments", "criteria", "1", "--set", "latency_p95.margin_ms=fast"],
     "latency_p95.margin_ms must be a number"),
    (["experiments", "criteria", "1", "--set", "nope=1"], "unknown criterion 'nope'"),
    (["experiments", "criteria", "1", "--set", "latency_p95.nope=1"], "unknown setting"),
    (["experiments", "criteria", "1", "--set", "alpha"], "--set needs SECTION.KEY=VALUE"),
    (["experiments", "criteria", "1", "--primary", "vibes"], "unknown primary metric"),
    (["experiments", "complete", "1", "--winner", "Z"], "--winner must be one of A, B or none"),
    # ratings
    (["ratings", "import", "1", "--csv", "{root}/none.csv"], "--csv: no such file"),
    (["ratings", "export", "1", "--csv", "{root}/no-dir/sheet.csv"], "folder"),
    (["ratings", "export", "1", "--csv", "{root}"], "is a folder; name a file"),
    (["ratings", "export", "1", "--csv", "{root}/s.csv", "--rater", EVIL], "control"),
    (["rate", "1", "--rater", EVIL], "control or format characters"),
    # fine-tunes and quantize
    (["finetune", "start", "--base", MODEL, "--train", "{root}/none.jsonl"], "--train: no such file"),
    (["finetune", "start", "--base", MODEL, "--train", "{root}/chat.jsonl", "--rank", "0"],
     "--rank: must be >= 1"),
    (["finetune", "start", "--base", MODEL, "--train", "{root}/chat.jsonl", "--learning-rate", "0"],
     "--learning-rate: must be > 0"),
    (["finetune", "start", "--base", MODEL, "--train", "{root}/chat.jsonl", "--dropout", "1"],
     "--dropout: must be >= 0 and < 1"),
    (["finetune", "start", "--base", MODEL, "--train", "{root}/chat.jsonl", "--eval-every", "0"],
     "--eval-every: must be >= 1"),
    (["finetune", "start", "--base", MODEL, "--train", "{root}/empty.jsonl"],
     "holds no conversations"),
    (["finetune", "start", "--base", "nope", "--train", "{root}/chat.jsonl"], "base 'nope'"),
    (["finetune", "show", "abc"], "argument job: expected a whole number >= 1, got 'abc'"),
    (["finetune", "export", "99"], "no fine-tune job 99"),
    (["finetune", "ab", MODEL, "--production", "exp-prod", "--dataset", "exp-ds", "--limit", "0"],
     "--limit: must be >= 1"),
    (["finetune", "data", "exp-ds", "--out", "{root}/a-file"], "is a file, not a folder"),
    (["finetune", "data", "exp-ds", "--out", "{root}/o", "--val-fraction", "1"],
     "--val-fraction: must be >= 0 and < 1"),
    (["quantize", "{root}/none.gguf", "{root}/out.gguf"], "argument input: no such file"),
    (["quantize", "{root}/chat.jsonl", "{root}/no-dir/out.gguf"], "does not exist"),
    (["quantize", "{root}/chat.jsonl", "{root}/chat.jsonl"], "the same file"),
]


@pytest.mark.parametrize("argv, fragment", MISTAKES, ids=[" ".join(a)[:60] for a, _ in MISTAKES])
def test_mistake_is_one_line_error(home, capsys, argv, fragment):
    argv = [a.replace("{root}", str(home)) for a in argv]
    code = main(["--workspace", str(home), *argv])
    one_line_error(code, capsys.readouterr().err, fragment)


def test_refused_mistakes_change_nothing(home, capsys):
    from workbench.store import Store

    with Store(home / "workbench.db") as store:
        before = ([v.name for v in store.list_variants()], store.get_model(MODEL).n_threads)
    for argv in (["variants", "add", EVIL, "--model", MODEL],
                 ["variants", "add", "v", "--model", MODEL, "--max-tokens", "0"],
                 ["models", "set", MODEL, "--threads", "0"]):
        assert main(["--workspace", str(home), *argv]) == 2
    capsys.readouterr()
    with Store(home / "workbench.db") as store:
        assert ([v.name for v in store.list_variants()], store.get_model(MODEL).n_threads) == before


def test_quantize_failure_names_llama_cpp_reason(home, capsys, bundled_path):
    """A real llama.cpp refusal (requantizing Q4_1) is one line with llama.cpp's reason."""
    code = main(["--workspace", str(home), "quantize", str(bundled_path), str(home / "q8.gguf"),
                 "--type", "q8_0"])
    out, err = capsys.readouterr()
    error = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(error) == 1 and "Traceback" not in err
    assert "failed" in error[0] and "requantizing from type q4_1 is disabled" in error[0]
    assert not (home / "q8.gguf").exists()


@pytest.mark.parametrize("argv, fragment", [
    (["variants", "add", "v", "--model", MODEL, "--max-tokens", "0"], "--max-tokens: must be >= 1"),
    (["quantize", "/no/such/in.gguf", "out.gguf"], "argument input: no such file"),
])
def test_real_cli_in_a_subprocess(home, argv, fragment):
    proc = subprocess.run([sys.executable, "-m", "workbench", *argv, "--workspace", str(home)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    one_line_error(proc.returncode, proc.stderr, fragment)
    assert proc.stdout == ""
