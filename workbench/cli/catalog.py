"""`workbench models|datasets|variants ...`: what the workspace holds."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from ..datasets import import_dataset
from ..formatting import file_size
from ..workspace import OpenedWorkspace
from . import validators as check
from .output import cell, print_fields, print_import_report, print_json, print_table


def add_parsers(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="registered GGUF models").add_subparsers(
        dest="action", required=True)
    p = models.add_parser("list", help="list models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=models_list)
    p = models.add_parser("add", help="check and register a GGUF file")
    p.add_argument("path", type=check.readable_file)
    p.add_argument("--id", dest="model_id", type=check.name)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=models_add)
    p = models.add_parser("show", help="one model's metadata, settings and benchmarks")
    p.add_argument("model_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=models_show)
    p = models.add_parser("set", help="change a model's load settings")
    p.add_argument("model_id")
    p.add_argument("--n-gpu-layers", type=check.gpu_layers, help="-1: all layers")
    p.add_argument("--n-ctx", type=check.context_tokens)
    p.add_argument("--threads", type=check.positive_int, dest="n_threads")
    p.add_argument("--engine", choices=("auto", "worker", "server"),
                   help="auto: a managed llama-server when a binary exists, else the embedded "
                        "worker; worker: always embedded; server: always llama-server")
    p.add_argument("--server-slots", type=check.positive_int, metavar="N",
                   help="parallel slots of its managed llama-server (default 8)")
    p.set_defaults(func=models_set)
    p = models.add_parser("bench", help="quick benchmark: prompt tok/s, decode tok/s, TTFT")
    p.add_argument("model_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=models_bench)

    datasets = sub.add_parser("datasets", help="incident datasets").add_subparsers(
        dest="action", required=True)
    p = datasets.add_parser("list", help="list datasets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=datasets_list)
    p = datasets.add_parser("import", help="validate and import a JSONL file")
    p.add_argument("path", type=check.readable_file)
    p.add_argument("--name", type=check.name)
    p.add_argument("--strict", action="store_true", help="refuse the whole file if a line is bad")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=datasets_import)
    p = datasets.add_parser("show", help="preview a dataset's items")
    p.add_argument("dataset")
    p.add_argument("--limit", type=check.positive_int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=datasets_show)

    variants = sub.add_parser("variants", help="model + system prompt + sampling").add_subparsers(
        dest="action", required=True)
    p = variants.add_parser("list", help="list variants")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=variants_list)
    p = variants.add_parser("add", help="create a variant")
    p.add_argument("name", type=check.name)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--model", help="local model id (see `workbench models list`)")
    target.add_argument("--endpoint", help="an endpoint (see `workbench endpoints list`)")
    p.add_argument("--endpoint-model", metavar="NAME",
                   help="the endpoint's model to use (default: the endpoint's default model)")
    p.add_argument("--lora", type=check.readable_file, metavar="ADAPTER.gguf",
                   help="a LoRA adapter GGUF on the --model (what `finetune export` writes)")
    p.add_argument("--lora-scale", type=check.number(), default=1.0)
    p.add_argument("--system", help="system prompt")
    p.add_argument("--temperature", type=check.temperature, default=0.0, help="0 to 2")
    p.add_argument("--top-p", type=check.top_p, default=1.0, help="above 0, at most 1")
    p.add_argument("--max-tokens", type=check.max_tokens, default=256)
    p.add_argument("--seed", type=check.integer(), default=0)
    p.add_argument("--json-schema", type=check.readable_file,
                   help="file with a JSON schema the output must follow")
    p.set_defaults(func=variants_add)


def models_list(ws: OpenedWorkspace, args) -> int:
    models = ws.registry.list()
    if args.json:
        print_json([asdict(m) for m in models])
        return 0
    print_table(("id", "architecture", "size", "quant", "context", "file", "gpu layers", "source"),
                ((m.id, m.architecture, m.size_label, m.file_type, m.context_length,
                  file_size(m.file_size), m.n_gpu_layers, m.source) for m in models))
    return 0


def models_add(ws: OpenedWorkspace, args) -> int:
    model = ws.registry.add(str(args.path), model_id=args.model_id)
    if args.json:
        print_json(asdict(model))
    else:
        print(f"registered {cell(model.id)}: {cell(model.architecture)} "
              f"{cell(model.size_label or '')} {cell(model.file_type)}, "
              f"{file_size(model.file_size)}, sha256 {model.sha256[:12]}…")
    return 0


def _engine_text(model) -> str:
    from ..experiments.arm_engines import engine_summary

    short, why = engine_summary(model)
    return f"none: {why}" if short == "none" else why


def models_show(ws: OpenedWorkspace, args) -> int:
    model = ws.registry.get(args.model_id)
    data = {**asdict(model), "engine_used": _engine_text(model),
            "benchmarks": ws.store.benchmarks(model.id)}
    if args.json:
        print_json(data)
        return 0
    print_fields(asdict(model).items())
    print_fields([("replays run on", data["engine_used"])])
    for bench in data["benchmarks"][:5]:
        print(f"benchmark {bench['created_at']}: prompt {bench['prompt_tps']:.0f} tok/s, "
              f"decode {bench['decode_tps']:.1f} tok/s, TTFT {bench['ttft_ms']:.0f} ms")
    return 0


def models_set(ws: OpenedWorkspace, args) -> int:
    settings = {k: getattr(args, k) for k in ("n_gpu_layers", "n_ctx", "n_threads", "engine",
                                              "server_slots") if getattr(args, k) is not None}
    model = ws.store.set_model_settings(args.model_id, **settings)
    print(f"{cell(model.id)}: n_gpu_layers={model.n_gpu_layers} n_ctx={model.n_ctx} "
          f"n_threads={model.n_threads or 'auto'} engine={model.engine} "
          f"server_slots={model.server_slots or 'default'}")
    print(f"replays run on: {cell(_engine_text(model))}")
    return 0


def models_bench(ws: OpenedWorkspace, args) -> int:
    from ..models.benchmark import benchmark_model

    result = benchmark_model(ws.store, args.model_id, log_dir=ws.workspace.root / "logs")
    if args.json:
        print_json(result)
    else:
        print(f"{cell(args.model_id)}: prompt {result['prompt_tps']:.0f} tok/s, decode "
              f"{result['decode_tps']:.1f} tok/s, TTFT {result['ttft_ms']:.0f} ms "
              f"({result['n_threads']} threads, {result['n_gpu_layers']} GPU layers)")
    return 0


def datasets_list(ws: OpenedWorkspace, args) -> int:
    rows = ws.store.list_datasets()
    if args.json:
        print_json(rows)
        return 0
    print_table(("id", "name", "items", "rejected lines", "imported", "source"),
                ((d["id"], d["name"], d["n_items"], d["n_rejected"], d["imported_at"][:19],
                  d["source_path"]) for d in rows))
    return 0


def datasets_import(ws: OpenedWorkspace, args) -> int:
    report = import_dataset(ws.store, args.path, name=args.name, strict=args.strict)
    return print_import_report(report, args.path, as_json=args.json)


def datasets_show(ws: OpenedWorkspace, args) -> int:
    dataset = ws.store.get_dataset(args.dataset)
    items = ws.store.items(dataset["id"], limit=args.limit)
    if args.json:
        print_json([asdict(i) for i in items])
        return 0
    for item in items:
        ref = item.reference or {}
        answer = ref.get("root_cause") or ref.get("answer") or ""
        print(f"[{cell(item.key)}] ({cell(item.category or '-')}, user {cell(item.user_id or '-')}) "
              f"reference: {cell(ref.get('severity', '-'))} {_preview(answer)}")
        print(f"    {_preview(item.prompt_text, 160)}")
    return 0


def _preview(text, width: int | None = None) -> str:
    """A one-line, terminal-safe preview of a long text."""
    flat = " ".join(str(text or "").split())
    return cell(flat[:width] if width else flat)


def variants_list(ws: OpenedWorkspace, args) -> int:
    variants = ws.store.list_variants()
    if args.json:
        print_json([asdict(v) for v in variants])
        return 0
    print_table(("id", "name", "target", "temp", "top_p", "max tokens", "seed", "json", "system prompt"),
                ((v.id, v.name, v.target, v.temperature, v.top_p, v.max_tokens, v.seed,
                  "yes" if v.json_schema else "no", (v.system_prompt or "")[:40]) for v in variants))
    return 0


def variants_add(ws: OpenedWorkspace, args) -> int:
    schema = None
    if args.json_schema:
        try:
            schema = json.loads(args.json_schema.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"--json-schema: cannot read {args.json_schema}: "
                             f"{exc.strerror or exc}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"--json-schema: {args.json_schema.name} is not JSON: {exc}") from None
        if not isinstance(schema, dict):
            raise ValueError(f"--json-schema: {args.json_schema.name} must hold a JSON object "
                             f"(a schema), not {type(schema).__name__}")
    lora = None
    if args.lora is not None:
        from ..models.registry import check_lora_adapter

        lora = check_lora_adapter(args.lora)
    if args.endpoint_model and not args.endpoint:
        raise ValueError("--endpoint-model goes with --endpoint")
    variant = ws.store.create_variant(
        args.name, args.model, system_prompt=args.system, temperature=args.temperature,
        top_p=args.top_p, max_tokens=args.max_tokens, seed=args.seed, json_schema=schema,
        endpoint=args.endpoint, endpoint_model=args.endpoint_model, lora_path=lora,
        lora_scale=args.lora_scale)
    print(f"created variant {cell(variant.name)} (id {variant.id}) on {cell(variant.target)}")
    return 0
