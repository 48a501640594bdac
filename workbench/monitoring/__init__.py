"""Production monitoring: imported request logs, rolling-window health, alerts.

- ``logs``: import request logs (flat or OpenAI chat-log JSONL) as a replayable dataset plus
  recorded observations;
- ``monitor``: rolling-window latency, feedback, safety and error figures of a model, variant or
  log, with trends against the previous window and a recorded baseline;
- ``alerts``: severities, default rules, storage, throttling and grouping.

The HAZMAT scorer lives with the other scorers (``experiments/hazmat.py``).
"""
