"""Incident datasets: parse and validate JSONL, report every bad line, import good lines.

One JSON object a line (schema in ``datasets/README.md``). Blank lines, CRLF endings and a UTF-8
byte-order mark are accepted. A bad line is reported with its number and reason; every good line is
kept, unless ``strict`` asks to refuse the whole file.

A file is read only when it is a regular file (not a FIFO, device or socket, nor a link to one) of
at most ``MAX_FILE_BYTES``; a line over ``MAX_LINE_BYTES`` or nested deeper than ``MAX_JSON_DEPTH``
is a bad line; a binary file (NUL bytes, e.g. UTF-16 or a compressed file) is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .store import Store
from .terminal_text import safe_text
from .timestamps import parse_timestamp

FEATURES = ("incident", "audit", "code")
ROLES = ("system", "user", "assistant")
KNOWN_KEYS = {"id", "input", "messages", "system", "reference", "user_id", "category", "feature",
              "timestamp"}
_SEVERITY = re.compile(r"^\s*sev[-_ ]?([0-3])\s*$", re.IGNORECASE)

MAX_LINE_BYTES = 1 << 20          # 1 MiB per line
MAX_FILE_BYTES = 200 << 20        # 200 MiB per file
MAX_JSON_DEPTH = 32               # objects/arrays nested deeper make a bad line
MAX_LISTED_ERRORS = 20            # bad lines listed in a refusal message


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
    timestamp = record.get("timestamp")
    if timestamp is not None:
        try:
            timestamp = parse_timestamp(timestamp)
        except ValueError as exc:
            return None, f"'timestamp': {exc}", []
    unknown = sorted(set(record) - KNOWN_KEYS)
    warnings = [f"ignored unknown field(s): {', '.join(unknown)}"] if unknown else []
    item = {
        "key": key.strip(), "input": record.get("input"), "messages": record.get("messages"),
        "system": record.get("system"), "reference": reference,
        "user_id": record.get("user_id"), "category": record.get("category"),
        "feature": feature or "incident", "timestamp": timestamp,
    }
    return item, None, warnings


def _depth_over(value: object, limit: int) -> bool:
    """True when ``value`` nests objects/arrays more than ``limit`` deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, (dict, list)):
            if depth > limit:
                return True
            children = current.values() if isinstance(current, dict) else current
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n} bytes"


def _decode_line(line_no: int, raw: bytes) -> tuple[object, LineError | None]:
    if len(raw) > MAX_LINE_BYTES:
        return None, LineError(line_no, f"line is {_size(len(raw))}, over the "
                                        f"{_size(MAX_LINE_BYTES)} limit per line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, LineError(line_no, f"not valid UTF-8 (byte {exc.start})")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, LineError(line_no, f"invalid JSON: {exc.msg} (column {exc.colno})")
    except RecursionError:
        return None, LineError(line_no, f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
    if _depth_over(record, MAX_JSON_DEPTH):
        return None, LineError(line_no, f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
    return record, None


def json_lines(data: bytes):
    """(line number, decoded record or None, LineError or None) for each non-blank line of a
    JSONL document (a UTF-8 BOM is skipped; the size, depth and UTF-8 checks of every line)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        if raw.strip():
            record, error = _decode_line(line_no, raw)
            yield line_no, record, error


def parse_jsonl(data: bytes) -> ParseResult:
    """Validate every line of a JSONL document; good lines become items, bad ones errors."""
    result = ParseResult(sha256=hashlib.sha256(data).hexdigest())
    seen: dict[str, int] = {}
    for line_no, record, error in json_lines(data):
        if error:
            result.errors.append(error)
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


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def read_dataset_file(path: str | Path) -> bytes:
    """The bytes of a dataset file, refused with a one-line :class:`DatasetError` naming the file
    when it is not a regular file (a link is followed, then checked), is over
    ``MAX_FILE_BYTES``, cannot be read, or is binary. Never blocks on a FIFO or device."""
    path = Path(path)
    shown = safe_text(path.name)
    try:
        kind = _not_regular(os.stat(path).st_mode)
        if kind:
            raise DatasetError(f"{shown}: {kind}, not a regular file; only regular files are read")
        # O_NONBLOCK: a file swapped for a FIFO after the check still cannot block the open
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise DatasetError(f"{shown}: cannot read ({exc.strerror or exc})") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if (kind := _not_regular(info.st_mode)):
            raise DatasetError(f"{shown}: {kind}, not a regular file; only regular files are read")
        if info.st_size > MAX_FILE_BYTES:
            raise DatasetError(f"{shown}: {_size(info.st_size)}, over the "
                               f"{_size(MAX_FILE_BYTES)} limit per dataset file")
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise DatasetError(f"{shown}: cannot read ({exc.strerror or exc})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise DatasetError(f"{shown}: over the {_size(MAX_FILE_BYTES)} limit per dataset file")
    if (nul := data.find(b"\x00")) >= 0:
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        hint = "UTF-16 text; save it as UTF-8" if utf16 else f"NUL byte at offset {nul}"
        raise DatasetError(f"{shown}: not a UTF-8 text file (binary data: {hint})")
    return data


def _listed(errors: list[LineError]) -> str:
    lines = "".join(f"\n  {safe_text(e)}" for e in errors[:MAX_LISTED_ERRORS])
    more = len(errors) - MAX_LISTED_ERRORS
    return lines + (f"\n  ... and {more} more" if more > 0 else "")


def import_dataset(store: Store, path: str | Path, *, name: str | None = None,
                   strict: bool = False) -> ImportReport:
    """Validate a JSONL file and import its good lines (all or nothing when ``strict``)."""
    path = Path(path)
    data = read_dataset_file(path)
    parsed = parse_jsonl(data)
    shown = safe_text(path.name)
    if strict and parsed.errors:
        raise DatasetError(f"{shown}: refused ({len(parsed.errors)} bad line(s), --strict):"
                           f"{_listed(parsed.errors)}")
    if not parsed.items:
        if parsed.errors and all("UTF-8" in e.reason for e in parsed.errors):
            raise DatasetError(f"{shown}: not a UTF-8 text file (no line decodes as UTF-8; "
                               f"{parsed.errors[0]})")
        raise DatasetError(f"{shown}: no valid items{_listed(parsed.errors)}")
    name = name or path.stem
    dataset_id = store.save_dataset(name, parsed.items, source_path=str(path),
                                    sha256=parsed.sha256, n_rejected=len(parsed.errors))
    return ImportReport(dataset_id, name, len(parsed.items), parsed.errors, parsed.warnings)
