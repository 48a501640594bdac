"""Hostile text never breaks or reaches the terminal raw: names, ids and answers holding Rich
markup (``[/oops]`` is a markup error when parsed) and terminal escapes (ESC, CR, BEL) are shown
as plain text on every screen."""

from __future__ import annotations

import json

import pytest
from screen_support import settle, screen_text, write_jsonl

HOSTILE = "[/oops] [bold]x\x1b]0;pwned\x07\x1b[2J\r"


def hostile_workspace(tmp_path):
    from workbench.workspace import open_workspace

    root = tmp_path / "ws"
    write_jsonl(root / "datasets" / "incidents.jsonl", [json.dumps({
        "id": f"inc-{i}{HOSTILE}", "input": f"Alert {i}: {HOSTILE} checkout down",
        "user_id": f"u{HOSTILE}", "category": f"ops{HOSTILE}",
        "reference": {"severity": "SEV-1", "root_cause": f"cause {HOSTILE}"}}) for i in range(2)])
    opened = open_workspace(root)
    store = opened.store
    try:
        variants = store.list_variants()
        store.db["variants"].update(variants[0].id, {"name": f"prod{HOSTILE}"})
        dataset = store.list_datasets()[0]
        store.db["datasets"].update(dataset["id"], {"name": f"incidents{HOSTILE}"})
        exp = store.create_experiment(f"exp{HOSTILE}", dataset["id"],
                                      {"A": variants[0].id, "B": variants[1].id})
        for item in store.items(dataset["id"]):
            for arm, variant in (("A", variants[0]), ("B", variants[1])):
                store.record_run({"experiment_id": exp.id, "item_id": item.id,
                                  "variant_id": variant.id, "arm": arm,
                                  "output": f"SEV-1 {HOSTILE}\nsecond line {HOSTILE}",
                                  "latency_ms": 900.0, "ttft_ms": 100.0,
                                  "error": f"boom {HOSTILE}" if arm == "B" else None})
        store.set_experiment(exp.id, status="paused")
    finally:
        opened.close()
    return root


@pytest.mark.parametrize("keys", [("1",), ("2",), ("2", "down"), ("3",), ("3", "enter"),
                                  ("4",), ("5",), ("6",), ("7",)])
async def test_hostile_text_is_shown_plainly(tmp_path, make_app, keys):
    app = make_app(hostile_workspace(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        text = screen_text(app)
        assert "\x1b" not in text and "\x07" not in text and "\r" not in text
        assert not app.errors


async def test_hostile_log_name_on_the_monitor_screen(tmp_path, make_app):
    """A log named with markup and escapes: the target list, the figures, the alert list and
    the alert notifications show the name literally."""
    from datetime import datetime, timezone

    from workbench.monitoring.logs import import_logs
    from workbench.store import Store

    root = hostile_workspace(tmp_path)
    path = write_jsonl(tmp_path / "prod.jsonl", [json.dumps({
        "request_id": f"r{i}", "timestamp": f"2026-12-01T08:{i:02d}:00+00:00",
        "input": f"req {HOSTILE}", "response": f"ok {HOSTILE}", "latency_ms": 2000.0,
        "feedback": -1, "safety_flags": [f"flag{HOSTILE}"]}) for i in range(30)])
    with Store(root / "workbench.db") as store:
        import_logs(store, path, name=f"prod{HOSTILE}")
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        screen = app.screen
        assert screen.target == f"logs:prod{HOSTILE}"
        screen.clock = lambda: datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
        await pilot.press("c")
        await settle(pilot)
        text = screen_text(app)
        assert "\x1b" not in text and "\x07" not in text and "\r" not in text
        assert "logs: prod[/oops] [bold]x\\x1b]0;pwn" in text  # the option, escapes visible
        assert "on logs:prod[/oops] [bold]x" in text  # the alert list's summary
        notices = [n.message for n in app._notifications if n.title.endswith("alert")]
        assert notices and all("\x1b" not in m and "[/oops]" in m for m in notices)
        assert not app.errors
