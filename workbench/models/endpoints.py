"""Probing a registered endpoint and keeping what it said (the CLI and the Models screen)."""

from __future__ import annotations

from ..engines.probe import ProbeError, probe_endpoint
from ..store import Store

__all__ = ["ProbeError", "probe_and_record"]


def probe_and_record(store: Store, name: str) -> dict:
    """Probe endpoint ``name`` and store the result; ``ProbeError`` says why it could not."""
    endpoint = store.get_endpoint(name)
    found = probe_endpoint(endpoint.base_url, api_key_env=endpoint.api_key_env)
    store.record_probe(name, found)
    return found
