"""Production request logs: import a JSONL of logged requests as a replayable dataset plus the
recorded observations (response, latency, tokens, feedback, safety flags) for monitoring.

Accepted shapes (documented in ``datasets/README.md``), one JSON object a line:

- flat: ``{"request_id", "timestamp", "input" | "messages", "response", "model", "latency_ms",
  "prompt_tokens", "completion_tokens", "feedback", "safety_flags", "user_id", "error"}``;
- OpenAI chat log: ``{"request": {"model", "messages"}, "response": {"id", "model",
  "choices": [{"message": {"content"}}], "usage": {...}}, "created", ...}`` with the flat
  fields (``latency_ms``, ``feedback``, ...) beside ``request`` and ``response``.

Each good line becomes a dataset item (its input messages: replayable through a variant) and an
``observations`` row. A bad line is reported with its number and reason; the good lines are kept
(``strict`` refuses the whole file instead), exactly like a dataset import.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..datasets import (DatasetError, LineError, _listed, json_lines, read_dataset_file,
                        validate_record)
from ..experiments.scoring import score_output
from ..store import Store, utcnow
from ..terminal_text import safe_text
from ..timestamps import parse_timestamp

FEEDBACK_WORDS = {"up": 1, "thumbs_up": 1, "down": -1, "thumbs_down": -1, "none": 0}
_PASSED_THROUGH = ("system", "category", "feature")


@dataclass
class LogImportReport:
    dataset_id: int
    name: str
    imported: int
    errors: list[LineError]
    warnings: list[LineError] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"imported {self.imported} logged request(s) into dataset {self.name!r} "
                f"(id {self.dataset_id})")
        if self.errors:
            text += f"; {len(self.errors)} bad line(s) skipped"
        return text


def _text_content(content: object) -> object:
    """OpenAI content parts ``[{"type": "text", "text": ...}]`` joined into one string."""
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return content


def _messages(messages: object, warnings: list[str]) -> object:
    if not isinstance(messages, list):
        return messages
    kept = []
    for message in messages:
        if isinstance(message, dict) and message.get("role") in ("tool", "function", "developer"):
            if message.get("role") == "developer":  # OpenAI's newer name for the system role
                kept.append({"role": "system", "content": _text_content(message.get("content"))})
                continue
            warnings.append(f"left out a {message['role']!r} message (not replayable)")
            continue
        if isinstance(message, dict):
            message = {"role": message.get("role"), "content": _text_content(message.get("content"))}
        kept.append(message)
    return kept


def _feedback(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in FEEDBACK_WORDS:
        return FEEDBACK_WORDS[value.strip().lower()]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (-1, 0, 1):
        return int(value)
    raise ValueError(f"'feedback' must be -1, 0 or 1 (or up/down), got {value!r}")


def _flags(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):
        return sorted(str(k) for k, v in value.items() if v)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v.strip()]
    if isinstance(value, str):
        return [value] if value.strip() else []
    raise ValueError("'safety_flags' must be a list of strings or an object of flag: true/false")


def _count(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
            or not math.isfinite(value):
        raise ValueError(f"'{name}' must be a non-negative number, got {value!r}")
    return int(value)


def _latency(record: dict) -> float | None:
    for name, scale in (("latency_ms", 1.0), ("latency", 1.0), ("duration_ms", 1.0),
                        ("latency_s", 1000.0)):
        value = record.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
                    or not math.isfinite(value):
                raise ValueError(f"'{name}' must be a non-negative number, got {value!r}")
            return float(value) * scale
    return None


def _error_text(value: object) -> str | None:
    if value in (None, "", False):
        return None
    if isinstance(value, dict):
        return str(value.get("message") or json.dumps(value))[:500]
    return str(value)[:500]


def _openai_parts(record: dict) -> dict:
    """The flat fields an OpenAI chat-log line holds in ``request`` / ``response``."""
    request, response = record["request"], record.get("response")
    if not isinstance(request, dict):
        raise ValueError("'request' must be an object with 'messages'")
    if response is not None and not isinstance(response, dict):
        raise ValueError("'response' must be an object with 'choices'")
    response = response or {}
    text = None
    choices = response.get("choices")
    if choices:
        if not isinstance(choices, list) or not isinstance(choices[0], dict):
            raise ValueError("'response.choices' must be a list of objects")
        message = choices[0].get("message") or {}
        text = _text_content(message.get("content") if isinstance(message, dict) else None)
        if text is None and isinstance(choices[0].get("text"), str):
            text = choices[0]["text"]
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
    flat = {"messages": request.get("messages"), "response": text,
            "model": request.get("model") or response.get("model"),
            "timestamp": record.get("timestamp", record.get("created", response.get("created"))),
            "request_id": record.get("request_id", record.get("id", response.get("id"))),
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "error": record.get("error", response.get("error"))}
    if "input" in request and "messages" not in request:
        flat["input"] = request["input"]
        del flat["messages"]
    return flat


def normalize_log(record: object, line_no: int) -> tuple[dict, dict, list[str]]:
    """One decoded log line as (dataset record, observation, warnings); ``ValueError`` with the
    reason for a bad line."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    flat = {**record, **_openai_parts(record)} if "request" in record else dict(record)
    flat.pop("request", None)
    if "response" not in flat:
        flat["response"] = flat.get("output", flat.get("completion"))
    response = flat["response"]
    if response is not None and not isinstance(response, str):
        raise ValueError("'response' must be a string (the answer text)")
    key = flat.get("request_id", flat.get("id"))
    key = f"line-{line_no}" if key is None else str(key)
    warnings: list[str] = []
    item = {"id": key, "user_id": flat.get("user_id", flat.get("user"))}
    for name in _PASSED_THROUGH:
        if flat.get(name) is not None:
            item[name] = flat[name]
    if "messages" in flat:
        item["messages"] = _messages(flat["messages"], warnings)
    if "input" in flat:
        item["input"] = flat["input"]
    if isinstance(item["user_id"], (int, float)) and not isinstance(item["user_id"], bool):
        item["user_id"] = str(item["user_id"])
    tokens = flat.get("tokens")
    if isinstance(tokens, dict):
        flat.setdefault("prompt_tokens", tokens.get("prompt", tokens.get("prompt_tokens")))
        flat.setdefault("completion_tokens", tokens.get("completion",
                                                        tokens.get("completion_tokens")))
    elif tokens is not None:
        flat.setdefault("completion_tokens", tokens)
    usage = flat.get("usage")
    if isinstance(usage, dict):
        flat.setdefault("prompt_tokens", usage.get("prompt_tokens"))
        flat.setdefault("completion_tokens", usage.get("completion_tokens"))
    stamp = flat.get("timestamp", flat.get("ts", flat.get("time")))
    try:
        observed_at = None if stamp is None else parse_timestamp(stamp)
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"'timestamp': {exc}") from None
    model = flat.get("model")
    observation = {
        "request_id": key, "line_no": line_no, "observed_at": observed_at,
        "model": None if model is None else str(model), "response": response,
        "latency_ms": _latency(flat),
        "prompt_tokens": _count(flat.get("prompt_tokens"), "prompt_tokens"),
        "completion_tokens": _count(flat.get("completion_tokens"), "completion_tokens"),
        "feedback": _feedback(flat.get("feedback", flat.get("user_feedback"))),
        "safety_flags": _flags(flat.get("safety_flags", flat.get("safety"))),
        "error": _error_text(flat.get("error")),
    }
    return item, observation, warnings


def auto_flags(response: str | None) -> list[str]:
    """Safety flags the workbench's own scorers find in a recorded answer (unsafe advice,
    hallucinated hazmat data, leaked secrets as ``secret:KIND``)."""
    if not response or not response.strip():
        return []
    scores = score_output(response, None)
    return [*scores.unsafe, *(f"secret:{kind}" for kind in scores.secrets)]


def parse_logs(data: bytes) -> tuple[list[tuple[dict, dict]], list[LineError], list[LineError]]:
    """Every line of a log JSONL: (item, observation) pairs, bad lines, warnings."""
    good: list[tuple[dict, dict]] = []
    errors: list[LineError] = []
    warnings: list[LineError] = []
    seen: dict[str, int] = {}
    for line_no, record, error in json_lines(data):
        if error:
            errors.append(error)
            continue
        try:
            flat, observation, notes = normalize_log(record, line_no)
        except ValueError as exc:
            errors.append(LineError(line_no, str(exc)))
            continue
        item, problem, _unknown = validate_record(flat)
        if problem:
            errors.append(LineError(line_no, problem))
            continue
        if item["key"] in seen:
            errors.append(LineError(line_no, f"duplicate request id {item['key']!r} "
                                             f"(first on line {seen[item['key']]})"))
            continue
        seen[item["key"]] = line_no
        item["line_no"] = line_no
        good.append((item, observation))
        warnings.extend(LineError(line_no, w) for w in notes)
    return good, errors, warnings


def import_logs(store: Store, path: str | Path, *, name: str | None = None,
                strict: bool = False) -> LogImportReport:
    """Import a request-log JSONL: a dataset of its requests plus one observation per request
    (all in one transaction; a re-import under the same name replaces both)."""
    import hashlib

    path = Path(path)
    data = read_dataset_file(path)
    good, errors, warnings = parse_logs(data)
    shown = safe_text(path.name)
    if strict and errors:
        raise DatasetError(f"{shown}: refused ({len(errors)} bad line(s), --strict):"
                           f"{_listed(errors)}")
    if not good:
        raise DatasetError(f"{shown}: no valid logged requests{_listed(errors)}")
    name = name or path.stem
    items = [item for item, _ in good]
    for item, observation in good:
        item["timestamp"] = observation["observed_at"]
    now = utcnow()
    with store.db.atomic():
        dataset_id = store.save_dataset(name, items, source_path=str(path),
                                        sha256=hashlib.sha256(data).hexdigest(),
                                        n_rejected=len(errors))
        ids = {r["key"]: r["id"] for r in store.rows(
            "SELECT id, key FROM items WHERE dataset_id = ?", [dataset_id])}
        store.db.execute("DELETE FROM observations WHERE dataset_id = ?", [dataset_id])
        store.db["observations"].insert_all(
            ({**obs, "dataset_id": dataset_id, "item_id": ids[item["key"]],
              "user_id": item.get("user_id"),
              "safety_flags": json.dumps(obs["safety_flags"]),
              "auto_flags": json.dumps(auto_flags(obs["response"])), "created_at": now}
             for item, obs in good), batch_size=500)
    return LogImportReport(dataset_id, name, len(good), errors, warnings)


def log_datasets(store: Store) -> list[dict]:
    """Datasets that hold imported logs, with their request count and time span."""
    return store.rows(
        """SELECT d.id, d.name, count(o.id) AS requests, min(o.observed_at) AS first_at,
                  max(o.observed_at) AS last_at, d.n_rejected, d.imported_at
           FROM datasets d JOIN observations o ON o.dataset_id = d.id
           GROUP BY d.id ORDER BY d.id""")
