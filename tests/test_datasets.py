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
