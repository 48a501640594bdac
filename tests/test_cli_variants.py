"""`workbench variants add` mistakes are one-line errors (exit 2), never tracebacks."""

import pytest

from workbench.cli import main


@pytest.mark.parametrize("content, message", [
    (None, "argument --json-schema: no such file"),
    ("[1, 2]", "must hold a JSON object (a schema), not list"),
    ("{not json", "is not JSON"),
    ('{"type": "objekt"}', "not a valid JSON Schema (type)"),
])
def test_json_schema_file_problems(ws, tmp_path, capsys, content, message):
    path = tmp_path / "schema.json"
    if content is not None:
        path.write_text(content)
    code = main(["--workspace", str(ws.workspace.root), "variants", "add", "x", "--model",
                 "smollm2-135m-instruct-q4_1", "--json-schema", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_lora_that_is_not_an_adapter_is_refused(ws, capsys, bundled_path):
    code = main(["--workspace", str(ws.workspace.root), "variants", "add", "x", "--model",
                 "smollm2-135m-instruct-q4_1", "--lora", str(bundled_path)])
    err = capsys.readouterr().err
    assert code == 2 and "is not a LoRA adapter GGUF" in err
