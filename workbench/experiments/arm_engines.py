"""Which engine answers each arm of a replay, built once per replay and torn down after it.

- A variant on an **endpoint** gets an HTTP engine on that endpoint.
- A variant on a **local GGUF** gets a managed llama-server when the model's engine setting allows
  it and a binary exists (``auto``, the default), else an embedded llama.cpp worker process.
  Every arm on the same GGUF shares **one** server (one model in memory, one prompt cache, its
  slots batched together); LoRA variants are loaded into it with ``--lora`` and chosen per request.
- Every local GGUF (and LoRA adapter) is checked again just before it is loaded: a file changed
  since it was registered is inspected again, one that is gone or no longer a GGUF is refused.
- Concurrency per arm: ``--concurrency N`` when given, else the engine's slots (a server's slots are
  split between the arms that share it, so measured latency never includes the server's own queue).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import default_threads
from ..engines.base import Backend, Generation, GenerationRequest
from ..engines.llama_cpp import EngineSpec
from ..engines.llama_server import (ManagedServer, ServerNotFound, ServerSpec,
                                    ServerStartError, find_llama_server, require_llama_server)
from ..engines.openai_http import HttpEngine, HttpSettings
from ..engines.worker import ModelWorker
from ..models.registry import check_lora_adapter, verify_model_file
from ..store import ModelRecord, Store, Variant

DEFAULT_SERVER_SLOTS = 8
DEFAULT_ENDPOINT_CONCURRENCY = 4


def engine_choice(model: ModelRecord) -> tuple[str, str]:
    """('server' or 'worker', why) for a local model; raises ``ServerNotFound`` when the model
    insists on a server and there is none."""
    if model.engine == "worker":
        return "worker", "embedded llama.cpp worker (set on the model)"
    if model.engine == "server":
        require_llama_server()  # raises with how to get one
        return "server", "managed llama-server"
    try:
        binary = find_llama_server()
    except ServerNotFound:  # $LLAMA_SERVER names no executable: auto falls back to the worker
        binary = None
    if binary is None:
        return "worker", "embedded llama.cpp worker (no llama-server binary found)"
    return "server", "managed llama-server"


def server_slots(model: ModelRecord) -> int:
    return model.server_slots or DEFAULT_SERVER_SLOTS


def engine_summary(model: ModelRecord) -> tuple[str, str]:
    """(short, explanation) of the engine a replay of ``model`` runs on, for tables and details:
    ``("server x8", "managed llama-server, 8 slots")``, ``("worker", ...)`` or ``("none", why)``."""
    try:
        kind, why = engine_choice(model)
    except RuntimeError as exc:
        return "none", str(exc)
    if kind == "server":
        return f"server x{server_slots(model)}", f"{why}, {server_slots(model)} slots"
    return "worker", why


class EngineSet:
    """The backends of one replay (``backends``: arm -> Backend): ``kill()`` aborts their work at
    once (cancel), ``close()`` ends them."""

    backends: dict

    def kill(self) -> None:
        for backend in list(self.backends.values()):
            kill = getattr(backend, "kill", None)
            if kill:
                kill()

    def close(self) -> None:
        for backend in list(self.backends.values()):
            try:
                backend.close()
            except Exception:  # noqa: BLE001 - closing must go on to the rest
                pass
        self.backends.clear()


class FactoryEngines(EngineSet):
    """Backends from a per-arm factory ``(arm, variant, experiment id) -> Backend`` (tests, the
    UI's fake engines); the factory's own ``close()`` runs after theirs."""

    def __init__(self, factory):
        self.factory, self.backends = factory, {}

    def build(self, variants: dict[str, Variant], experiment_id: int) -> dict[str, Backend]:
        for arm, variant in variants.items():
            self.backends[arm] = self.factory(arm, variant, experiment_id)
        return dict(self.backends)

    def close(self) -> None:
        super().close()
        if getattr(self.factory, "close", None):
            self.factory.close()


class RefusedModel:
    """The backend of an arm whose server could not load the model: every request is a recorded
    error (like a worker that fails to load), so the replay goes on and split/canary fall back."""

    slots = 1

    def __init__(self, message: str, engine: str):
        self.message, self.engine = message, engine

    def generate(self, request: GenerationRequest) -> Generation:
        return Generation.failed(self.message)

    def close(self) -> None:
        pass


@dataclass
class ArmPlan:
    """How one arm will be served (shown before a replay starts and stored on each run)."""

    arm: str
    variant: Variant
    kind: str  # worker, server or endpoint
    why: str
    concurrency: int


@dataclass
class ArmEngines(EngineSet):
    """Builds the backends of one replay; ``close()`` ends every worker and server it started."""

    store: Store
    log_dir: Path | None = None
    concurrency: int | None = None
    niceness: int = 0
    servers: dict = field(default_factory=dict)
    backends: dict = field(default_factory=dict)
    refused: dict = field(default_factory=dict)  # model id -> why its server did not start

    def plan(self, variants: dict[str, Variant]) -> list[ArmPlan]:
        """Decide each arm's engine and in-flight limit, starting nothing."""
        kinds = {}
        for arm, variant in variants.items():
            if variant.endpoint:
                kinds[arm] = ("endpoint", f"endpoint {variant.endpoint}")
            else:
                kinds[arm] = engine_choice(self.store.get_model(variant.model_id))
        sharing: dict[str, int] = {}
        for arm, variant in variants.items():
            if kinds[arm][0] == "server":
                sharing[variant.model_id] = sharing.get(variant.model_id, 0) + 1
        plans = []
        for arm, variant in variants.items():
            kind, why = kinds[arm]
            if self.concurrency:
                limit = self.concurrency
            elif kind == "server":
                model = self.store.get_model(variant.model_id)
                limit = max(1, server_slots(model) // sharing[variant.model_id])
            elif kind == "endpoint":
                endpoint = self.store.get_endpoint(variant.endpoint)
                limit = endpoint.concurrency or (endpoint.probe or {}).get("slots") \
                    or DEFAULT_ENDPOINT_CONCURRENCY
            else:
                limit = 1
            plans.append(ArmPlan(arm, variant, kind, why, int(limit)))
        return plans

    def build(self, variants: dict[str, Variant], experiment_id: int) -> dict[str, Backend]:
        """Start what the arms need and return one backend per arm."""
        plans = self.plan(variants)
        self.check_files(plans)
        n_workers = sum(1 for p in plans if p.kind == "worker")
        loras = self._server_loras(plans)
        # every local process gets its share of the cores: llama.cpp threads spin while they
        # wait, so two engines that each take every core slow each other down many times over
        threads = default_threads(max(1, n_workers + len(loras)))
        for p in plans:
            if p.kind == "endpoint":
                self.backends[p.arm] = self._endpoint_backend(p)
            elif p.kind == "server":
                self.backends[p.arm] = self._server_backend(p, loras[p.variant.model_id],
                                                            threads, experiment_id)
            else:
                self.backends[p.arm] = self._worker_backend(p, threads, experiment_id)
        return dict(self.backends)

    def check_files(self, plans: list[ArmPlan]) -> None:
        """Re-check every GGUF the plans will load (``InvalidGGUF`` says which and why)."""
        for model_id in dict.fromkeys(p.variant.model_id for p in plans if p.kind != "endpoint"):
            verify_model_file(self.store, model_id)
        for lora in dict.fromkeys(p.variant.lora_path for p in plans if p.variant.lora_path):
            check_lora_adapter(lora)

    @staticmethod
    def _server_loras(plans: list[ArmPlan]) -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {}
        for p in plans:
            if p.kind == "server":
                paths = found.setdefault(p.variant.model_id, [])
                if p.variant.lora_path and p.variant.lora_path not in paths:
                    paths.append(p.variant.lora_path)
        return {model: tuple(paths) for model, paths in found.items()}

    def _endpoint_backend(self, p: ArmPlan) -> Backend:
        endpoint = self.store.get_endpoint(p.variant.endpoint)
        settings = HttpSettings(base_url=endpoint.base_url,
                                model=p.variant.endpoint_model or endpoint.model,
                                api_key_env=endpoint.api_key_env, concurrency=p.concurrency,
                                stream=bool(endpoint.stream))
        label = " ".join(x for x in (endpoint.kind or "openai-compatible", endpoint.version) if x)
        return HttpEngine(settings, engine=f"{label} at endpoint {endpoint.name}")

    def _server_backend(self, p: ArmPlan, loras: tuple[str, ...], threads: int,
                        experiment_id: int) -> Backend:
        model = self.store.get_model(p.variant.model_id)
        if model.id in self.refused:
            return RefusedModel(self.refused[model.id], "llama-server (managed, did not start)")
        server = self.servers.get(model.id)
        if server is None:
            spec = ServerSpec(model_path=model.path, n_ctx=model.n_ctx, parallel=server_slots(model),
                              n_gpu_layers=model.n_gpu_layers,
                              n_threads=model.n_threads or threads,
                              lora_paths=loras, alias=model.id, niceness=self.niceness)
            log = (Path(self.log_dir) / f"server-{model.id}-exp{experiment_id}.log"
                   if self.log_dir else None)
            if log:
                log.parent.mkdir(parents=True, exist_ok=True)
            server = ManagedServer(spec, log_path=log)
            try:
                server.start()
            except ServerStartError as exc:
                self.refused[model.id] = (f"model {Path(model.path).name} failed to load in "
                                          f"llama-server: {exc}")
                return RefusedModel(self.refused[model.id], "llama-server (managed, did not start)")
            self.servers[model.id] = server
        extra = None
        if loras:
            extra = {"lora": [{"id": i, "scale": (p.variant.lora_scale if path == p.variant.lora_path
                                                   else 0.0)} for i, path in enumerate(loras)]}
        settings = HttpSettings(base_url=server.base_url, model=model.id,
                                concurrency=p.concurrency, extra_body=extra)
        return HttpEngine(settings, engine=server.label, health=server.health)

    def _worker_backend(self, p: ArmPlan, threads: int, experiment_id: int) -> Backend:
        model = self.store.get_model(p.variant.model_id)
        spec = EngineSpec(model_path=model.path, n_ctx=model.n_ctx, n_gpu_layers=model.n_gpu_layers,
                          n_threads=model.n_threads or threads,
                          lora_path=p.variant.lora_path, lora_scale=p.variant.lora_scale)
        return ModelWorker(spec, label=f"exp{experiment_id}-{p.arm}", log_dir=self.log_dir,
                           niceness=self.niceness)

    def close(self) -> None:
        """End every backend, then every managed server (no orphan process is left)."""
        super().close()
        for server in list(self.servers.values()):
            server.stop()
        self.servers.clear()
