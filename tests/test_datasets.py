"""Dataset validation and import: every bad line reported by number, every good line kept."""

import json
import subprocess
import sys

import pytest

from support import REPO, incident, write_jsonl
from workbench.datasets import DatasetError, import_dataset, parse_jsonl


def test_bad_lines_are_reported_with_numbers_and_good_lines_kept(ws, tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", [
        incident(1),                                   # line 1 ok
        "{not json",                                   # line 2
        json.dumps({"input": "no id"}),                # line 3
        json.dumps({"id": "x", "input": "a", "messages": [{"role": "user", "content": "b"}]}),
        json.dumps(incident(2, severity="SEV-9")),    # line 5 bad severity
        incident(3),                                   # line 6 ok
        json.dumps(incident(1)),                       # line 7 duplicate id
        json.dumps([1, 2]),                            # line 8 not an object
        json.dumps({"id": "m", "messages": [{"role": "bot", "content": "x"}]}),
        json.dumps({"id": "f", "input": "x", "feature": "chat"}),
    ])
    report = import_dataset(ws.store, path)
    assert report.imported == 2
    reasons = {e.line_no: e.reason for e in report.errors}
    assert sorted(reasons) == [2, 3, 4, 5, 7, 8, 9, 10]
    assert "invalid JSON" in reasons[2]
    assert "'id' is required" in reasons[3]
    assert "exactly one of 'input' or 'messages'" in reasons[4]
    assert "SEV-9" in reasons[5]
    assert "duplicate id 'inc-001' (first on line 1)" in reasons[7]
    assert "got list" in reasons[8]
    assert "role" in reasons[9]
    assert "feature" in reasons[10]
    items = ws.store.items(report.dataset_id)
    assert [i.key for i in items] == ["inc-001", "inc-003"]
    assert ws.store.get_dataset("mixed")["n_rejected"] == 8


def test_strict_refuses_the_whole_file(ws, tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [incident(1), "{oops"])
    with pytest.raises(DatasetError, match="line 2"):
        import_dataset(ws.store, path, strict=True)
    assert all(d["name"] != "s" for d in ws.store.list_datasets())


def test_bom_crlf_and_blank_lines_are_not_errors():
    lines = [json.dumps(incident(1)), "", "   ", json.dumps(incident(2))]
    data = b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n\r\n"
    result = parse_jsonl(data)
    assert result.errors == []
    assert [i["key"] for i in result.items] == ["inc-001", "inc-002"]
    assert [i["line_no"] for i in result.items] == [1, 4]


def test_invalid_utf8_line_is_reported_and_others_kept():
    data = json.dumps(incident(1)).encode() + b"\n{\"id\": \"\xff\"}\n" + json.dumps(incident(2)).encode()
    result = parse_jsonl(data)
    assert [(e.line_no, "UTF-8" in e.reason) for e in result.errors] == [(2, True)]
    assert len(result.items) == 2


def test_messages_format_and_severity_normalisation():
    record = {"id": "c1", "messages": [{"role": "system", "content": "triage"},
                                       {"role": "user", "content": "db down"}],
              "reference": {"severity": "sev1"}, "feature": "incident", "extra": 1}
    result = parse_jsonl(json.dumps(record).encode())
    item = result.items[0]
    assert item["reference"]["severity"] == "SEV-1"
    assert item["messages"][1]["content"] == "db down"
    assert "extra" in result.warnings[0].reason


def test_empty_or_missing_file_is_a_clear_error(ws, tmp_path):
    with pytest.raises(DatasetError, match="cannot read"):
        import_dataset(ws.store, tmp_path / "nope.jsonl")
    with pytest.raises(DatasetError, match="no valid items"):
        import_dataset(ws.store, write_jsonl(tmp_path / "bad.jsonl", ["[]"]))


def test_cli_import_prints_each_bad_line_and_exits_nonzero(tmp_path):
    path = write_jsonl(tmp_path / "cli.jsonl", [incident(1), "{bad", incident(2)])
    (tmp_path / "w").mkdir()
    proc = subprocess.run([sys.executable, "-m", "workbench", "--workspace", str(tmp_path / "w"),
                           "datasets", "import", str(path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "cli.jsonl: line 2: invalid JSON" in proc.stdout
    assert "imported 2 item(s)" in proc.stdout


SAMPLES = {"devops_incidents.jsonl": 60, "emergency_response.jsonl": 40, "audit_log.jsonl": 30}


@pytest.mark.parametrize("name,minimum", sorted(SAMPLES.items()))
def test_bundled_sample_datasets_are_clean(name, minimum):
    path = REPO / "datasets" / name
    result = parse_jsonl(path.read_bytes())
    assert result.errors == [], result.errors[:3]
    assert len(result.items) >= minimum
    assert all(i["reference"] for i in result.items)


# -- bad files: never read a FIFO or device, size caps, nesting, binary, unreadable -------------
import os  # noqa: E402

from workbench import datasets as datasets_module  # noqa: E402
from workbench.datasets import MAX_JSON_DEPTH, MAX_LINE_BYTES, read_dataset_file  # noqa: E402
from workbench.workspace import import_new_datasets, open_workspace  # noqa: E402


@pytest.mark.timeout(20)
def test_a_fifo_and_a_link_to_one_are_refused_without_blocking(ws, tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    link = tmp_path / "link.jsonl"
    link.symlink_to(fifo)
    for path in (fifo, link):
        with pytest.raises(DatasetError, match=rf"^{path.name}: a FIFO \(named pipe\), not a regular file"):
            import_dataset(ws.store, path)
    with pytest.raises(DatasetError, match="a character device, not a regular file"):
        read_dataset_file("/dev/zero")
    good = write_jsonl(tmp_path / "good.jsonl", [incident(1)])
    via_link = tmp_path / "via.jsonl"
    via_link.symlink_to(good)  # a link to a regular file is fine
    assert import_dataset(ws.store, via_link).imported == 1


def test_a_line_over_the_cap_is_a_bad_line_and_good_lines_are_kept():
    long_line = json.dumps(incident(2, notes="x" * MAX_LINE_BYTES))
    data = "\n".join([json.dumps(incident(1)), long_line, json.dumps(incident(3))]).encode()
    result = parse_jsonl(data)
    assert [i["key"] for i in result.items] == ["inc-001", "inc-003"]
    assert [e.line_no for e in result.errors] == [2]
    assert "over the 1.0 MiB limit per line" in result.errors[0].reason


def test_a_file_over_the_cap_is_refused_with_its_size(ws, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets_module, "MAX_FILE_BYTES", 1000)
    path = write_jsonl(tmp_path / "big.jsonl", [incident(i) for i in range(20)])
    with pytest.raises(DatasetError, match=r"^big\.jsonl: \d+ bytes, over the 1000 bytes limit"):
        import_dataset(ws.store, path)
    assert all(d["name"] != "big" for d in ws.store.list_datasets())


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000, 200_000])
def test_deeply_nested_json_is_a_bad_line_not_a_recursion_error(depth):
    deep = '{"id": "d", "input": "x", "reference": ' + "[" * depth + "]" * depth + "}"
    result = parse_jsonl("\n".join([deep, json.dumps(incident(1))]).encode())
    assert [(e.line_no, f"nested more than {MAX_JSON_DEPTH} levels" in e.reason)
            for e in result.errors] == [(1, True)]
    assert [i["key"] for i in result.items] == ["inc-001"]


def test_ordinary_nesting_is_accepted():
    record = incident(1, reference={"severity": "SEV-1", "answer": "a", "extra": [[{"k": [1]}]]})
    assert parse_jsonl(json.dumps(record).encode()).errors == []


@pytest.mark.parametrize("data,message", [
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(256)), "NUL byte at offset 3"),
    ('{"id": "a", "input": "b"}\n'.encode("utf-16"), "UTF-16 text; save it as UTF-8"),
    ("{\"id\": \"a\", \"input\": \"caf\u00e9\"}\n".encode("latin-1"), "no line decodes as UTF-8"),
])
def test_a_binary_or_non_utf8_file_is_a_clear_error(ws, tmp_path, data, message):
    path = tmp_path / "blob.jsonl"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match=r"^blob\.jsonl: not a UTF-8 text file") as caught:
        import_dataset(ws.store, path)
    assert message in str(caught.value)


def test_an_unreadable_file_is_a_clear_error(ws, tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "secret.jsonl", [incident(1)])

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(datasets_module.os, "open", denied)
    with pytest.raises(DatasetError, match=r"^secret\.jsonl: cannot read \(Permission denied\)$"):
        import_dataset(ws.store, path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file")
def test_a_mode_000_file_is_a_clear_error(ws, tmp_path):
    path = write_jsonl(tmp_path / "locked.jsonl", [incident(1)])
    path.chmod(0)
    with pytest.raises(DatasetError, match="cannot read"):
        import_dataset(ws.store, path)


@pytest.mark.timeout(30)
def test_one_bad_file_in_the_workspace_does_not_brick_it(tmp_path, monkeypatch):
    folder = tmp_path / "w" / "datasets"
    folder.mkdir(parents=True)
    write_jsonl(folder / "a_good.jsonl", [incident(1), incident(2)])
    os.mkfifo(folder / "b_pipe.jsonl")
    (folder / "c_link.jsonl").symlink_to(folder / "b_pipe.jsonl")
    (folder / "d_binary.jsonl").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 64)
    (folder / "e_deep.jsonl").write_text('{"id": "x", "input": ' + "[" * 10_000 + "]" * 10_000 + "}\n")
    write_jsonl(folder / "f_unreadable.jsonl", [incident(3)])
    write_jsonl(folder / "g_also_good.jsonl", [incident(4)])
    real_open = os.open

    def guarded_open(path, *args, **kwargs):
        if str(path).endswith("f_unreadable.jsonl"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(datasets_module.os, "open", guarded_open)
    opened = open_workspace(tmp_path / "w")
    try:
        names = {d["name"] for d in opened.store.list_datasets()}
        assert {"a_good", "g_also_good"} <= names
        assert not names & {"b_pipe", "c_link", "d_binary", "e_deep", "f_unreadable"}
        problems = "\n".join(opened.problems)
        for expected in ("skipped b_pipe.jsonl: a FIFO", "skipped c_link.jsonl: a FIFO",
                         "skipped d_binary.jsonl: not a UTF-8 text file",
                         "skipped e_deep.jsonl: no valid items\n  line 1: JSON nested more than",
                         "skipped f_unreadable.jsonl: cannot read (Permission denied)"):
            assert expected in problems, problems
        assert import_new_datasets(opened.store, folder) == opened.problems  # same warnings again
    finally:
        opened.close()


@pytest.mark.timeout(120)
def test_cli_import_of_a_fifo_or_binary_file_is_a_one_line_error(tmp_path):
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b"\x00\x01\x02")
    (tmp_path / "w").mkdir()
    # the FIFO may be refused by the CLI's argument check or by import_dataset: either way one
    # line naming the file, exit 2, and no hang
    for name, expected in (("pipe.jsonl", "not a regular file"),
                           ("bin.jsonl", "error: bin.jsonl: not a UTF-8 text file (binary data")):
        proc = subprocess.run([sys.executable, "-m", "workbench", "--workspace", str(tmp_path / "w"),
                               "datasets", "import", str(tmp_path / name)],
                              capture_output=True, text=True, timeout=100)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error: ") and name in proc.stderr, proc.stderr
        assert expected in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
