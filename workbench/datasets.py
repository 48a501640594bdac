"""Incident datasets: parse and validate JSONL, report every bad line, import good lines.

One JSON object a line (schema in ``datasets/README.md``). Blank lines, CRLF endings and a UTF-8
byte-order mark are accepted. A bad line is reported with its number and reason; every good line is
kept, unless ``strict`` asks to refuse the whole file.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .store import Store

FEATURES = ("incident", "audit", "code")
ROLES = ("system", "user", "assistant")
KNOWN_KEYS = {"id", "input", "messages", "system", "reference", "user_id", "category", "feature"}
_SEVERITY = re.compile(r"^\s*sev[-_ ]?([0-3])\s*$", re.IGNORECASE)


class DatasetError(ValueError):
    """A dataset that cannot be imported at all (unreadable, empty, or refused in strict mode)."""


@dataclass
class LineError:
    line_no: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}"


@dataclass
class ParseResult:
    items: list[dict] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    warnings: list[LineError] = field(default_factory=list)
    sha256: str = ""


@dataclass
class ImportReport:
    dataset_id: int
    name: str
    imported: int
    errors: list[LineError]
    warnings: list[LineError]

    def summary(self) -> str:
        text = f"imported {self.imported} item(s) into dataset {self.name!r} (id {self.dataset_id})"
        if self.errors:
            text += f"; {len(self.errors)} bad line(s) skipped"
        return text


def normalize_severity(value: object) -> str | None:
    """'sev1', 'SEV-1', 'Sev 1' -> 'SEV-1'; anything else -> None."""
    match = _SEVERITY.match(str(value)) if isinstance(value, (str, int)) else None
    return f"SEV-{match.group(1)}" if match else None


def _check_messages(messages: object) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list of {role, content} objects"
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages[{i}] must be an object"
        if message.get("role") not in ROLES:
            return f"messages[{i}].role must be one of {', '.join(ROLES)}"
        if not isinstance(message.get("content"), str):
            return f"messages[{i}].content must be a string"
    if not any(m["role"] == "user" for m in messages):
        return "'messages' needs at least one user message"
    return None


def _check_reference(reference: object) -> tuple[dict | None, str | None]:
    if reference is None:
        return None, None
    if not isinstance(reference, dict):
        return None, "'reference' must be an object"
    reference = dict(reference)
    if "severity" in reference and reference["severity"] is not None:
        severity = normalize_severity(reference["severity"])
        if severity is None:
            return None, (f"reference.severity {reference['severity']!r} is not one of "
                          "SEV-0, SEV-1, SEV-2, SEV-3")
        reference["severity"] = severity
    for key in ("root_cause", "answer"):
        if key in reference and not isinstance(reference[key], str):
            return None, f"reference.{key} must be a string"
    return reference, None


def validate_record(record: object) -> tuple[dict | None, str | None, list[str]]:
    """Check one decoded line. Return (item, error, warnings); item is None when error is set."""
    if not isinstance(record, dict):
        return None, f"expected a JSON object, got {type(record).__name__}", []
    key = record.get("id")
    if not isinstance(key, str) or not key.strip():
        return None, "'id' is required and must be a non-empty string", []
    has_input, has_messages = "input" in record, "messages" in record
    if has_input == has_messages:
        return None, "exactly one of 'input' or 'messages' is required", []
    if has_input and (not isinstance(record["input"], str) or not record["input"].strip()):
        return None, "'input' must be a non-empty string", []
    if has_messages and (problem := _check_messages(record["messages"])):
        return None, problem, []
    for name in ("system", "user_id", "category"):
        if record.get(name) is not None and not isinstance(record[name], str):
            return None, f"'{name}' must be a string", []
    feature = record.get("feature")
    if feature is not None and feature not in FEATURES:
        return None, f"'feature' must be one of {', '.join(FEATURES)} (got {feature!r})", []
    reference, problem = _check_reference(record.get("reference"))
    if problem:
        return None, problem, []
    unknown = sorted(set(record) - KNOWN_KEYS)
    warnings = [f"ignored unknown field(s): {', '.join(unknown)}"] if unknown else []
    item = {
        "key": key.strip(), "input": record.get("input"), "messages": record.get("messages"),
        "system": record.get("system"), "reference": reference,
        "user_id": record.get("user_id"), "category": record.get("category"),
        "feature": feature or "incident",
    }
    return item, None, warnings


def parse_jsonl(data: bytes) -> ParseResult:
    """Validate every line of a JSONL document; good lines become items, bad ones errors."""
    result = ParseResult(sha256=hashlib.sha256(data).hexdigest())
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    seen: dict[str, int] = {}
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            result.errors.append(LineError(line_no, f"not valid UTF-8 (byte {exc.start})"))
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            result.errors.append(LineError(line_no, f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        item, problem, warnings = validate_record(record)
        if problem:
            result.errors.append(LineError(line_no, problem))
            continue
        if item["key"] in seen:
            result.errors.append(LineError(
                line_no, f"duplicate id {item['key']!r} (first on line {seen[item['key']]})"))
            continue
        seen[item["key"]] = line_no
        item["line_no"] = line_no
        result.items.append(item)
        result.warnings.extend(LineError(line_no, w) for w in warnings)
    return result


def import_dataset(store: Store, path: str | Path, *, name: str | None = None,
                   strict: bool = False) -> ImportReport:
    """Validate a JSONL file and import its good lines (all or nothing when ``strict``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    parsed = parse_jsonl(data)
    if strict and parsed.errors:
        lines = "\n".join(f"  {e}" for e in parsed.errors)
        raise DatasetError(f"{path.name}: refused ({len(parsed.errors)} bad line(s), --strict):\n{lines}")
    if not parsed.items:
        detail = "".join(f"\n  {e}" for e in parsed.errors)
        raise DatasetError(f"{path.name}: no valid items{detail}")
    name = name or path.stem
    dataset_id = store.save_dataset(name, parsed.items, source_path=str(path),
                                    sha256=parsed.sha256, n_rejected=len(parsed.errors))
    return ImportReport(dataset_id, name, len(parsed.items), parsed.errors, parsed.warnings)
