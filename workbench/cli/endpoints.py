"""`workbench endpoints add|list|show|probe`: OpenAI-compatible servers a variant can point at."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from ..workspace import OpenedWorkspace
from . import validators as check
from .output import cell, print_fields, print_json, print_table


def add_parsers(sub: argparse._SubParsersAction) -> None:
    endpoints = sub.add_parser(
        "endpoints", help="OpenAI-compatible servers: llama-server, vLLM, Ollama, LM Studio"
    ).add_subparsers(dest="action", required=True)
    p = endpoints.add_parser("add", help="register an endpoint (then probe it)")
    p.add_argument("name", type=check.name)
    p.add_argument("--base-url", required=True,
                   help="server root, e.g. http://127.0.0.1:11434 (a trailing /v1 is fine)")
    p.add_argument("--api-key-env", metavar="VAR",
                   help="name of the environment variable that holds the API key (the key "
                        "itself is never stored)")
    p.add_argument("--model", help="default model name for variants on this endpoint")
    p.add_argument("--concurrency", type=check.positive_int, metavar="N",
                   help="requests in flight per arm (default: the server's slots, else 4)")
    p.add_argument("--no-stream", action="store_true",
                   help="do not stream (no TTFT; usage from the final response)")
    p.add_argument("--no-probe", action="store_true", help="do not contact the server now")
    p.set_defaults(func=endpoints_add)
    p = endpoints.add_parser("list", help="list endpoints")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=endpoints_list)
    p = endpoints.add_parser("show", help="one endpoint and what its last probe found")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=endpoints_show)
    p = endpoints.add_parser("probe", help="ask the server for its models, engine and version")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=endpoints_probe)


def _probe(ws: OpenedWorkspace, name: str) -> dict:
    from ..models.endpoints import ProbeError, probe_and_record

    try:
        return probe_and_record(ws.store, name)
    except ProbeError as exc:
        raise ValueError(f"probe of {name}: {exc}") from None


def _print_probe(name: str, found: dict, model: str | None) -> None:
    models = found.get("models") or []
    print(f"{cell(name)}: {cell(found.get('kind') or 'openai-compatible')} "
          f"{cell(found.get('version') or '')}".rstrip())
    print(f"  models: {cell(', '.join(map(str, models))) if models else '(none listed)'}")
    if found.get("n_ctx"):
        print(f"  context per request: {cell(found['n_ctx'])} tokens")
    if found.get("slots"):
        print(f"  slots (parallel requests): {cell(found['slots'])}")
    if found.get("chat_template"):
        first = (str(found["chat_template"]).strip().splitlines() or [""])[0][:80]
        print(f"  chat template: {len(found['chat_template'])} chars, starts {cell(repr(first))}")
    if model and models and model not in models:
        print(f"  warning: the default model {cell(repr(model))} is not among the models listed",
              file=sys.stderr)


def endpoints_add(ws: OpenedWorkspace, args) -> int:
    endpoint = ws.store.add_endpoint(args.name, args.base_url, api_key_env=args.api_key_env,
                                     model=args.model, concurrency=args.concurrency,
                                     stream=not args.no_stream)
    print(f"added endpoint {cell(endpoint.name)} at {cell(endpoint.base_url)}")
    if args.api_key_env:
        import os

        state = "set" if os.environ.get(args.api_key_env) else "NOT set in this shell"
        print(f"  API key read from ${cell(args.api_key_env)} at run time ({state})")
    if not args.no_probe:
        try:
            _print_probe(endpoint.name, _probe(ws, endpoint.name), endpoint.model)
        except ValueError as exc:
            print(f"warning: {cell(exc)} (kept; probe again with `workbench endpoints probe "
                  f"{cell(endpoint.name)}`)", file=sys.stderr)
    print(f"use it: workbench variants add NAME --endpoint {cell(endpoint.name)} "
          f"[--endpoint-model MODEL]")
    return 0


def endpoints_list(ws: OpenedWorkspace, args) -> int:
    rows = ws.store.list_endpoints()
    if args.json:
        print_json([{k: v for k, v in asdict(e).items() if k != "probe"} for e in rows])
        return 0
    print_table(("name", "base url", "kind", "version", "model", "key env var", "probed"),
                ((e.name, e.base_url, e.kind, e.version, e.model, e.api_key_env,
                  (e.probed_at or "")[:19] or None) for e in rows))
    return 0


def endpoints_show(ws: OpenedWorkspace, args) -> int:
    endpoint = ws.store.get_endpoint(args.name)
    if args.json:
        print_json(asdict(endpoint))
        return 0
    print_fields(((k, v) for k, v in asdict(endpoint).items() if k != "probe"), width=12)
    if endpoint.probe:
        _print_probe(endpoint.name, endpoint.probe, endpoint.model)
    else:
        print("not probed yet: workbench endpoints probe " + cell(endpoint.name))
    return 0


def endpoints_probe(ws: OpenedWorkspace, args) -> int:
    found = _probe(ws, args.name)
    if args.json:
        print_json(found)
    else:
        _print_probe(args.name, found, ws.store.get_endpoint(args.name).model)
    return 0
