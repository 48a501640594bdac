"""Models screen: registered GGUF models, add by path, load/unload in a worker process, benchmark."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group
from rich.table import Table
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Header, ProgressBar
from .widgets.safe import DataTable, Label, Static, Text
from textual.worker import Worker, WorkerState, get_current_worker

from .base import WorkbenchScreen
from .dialogs import Field, FormDialog, MessageDialog
from .endpoints_panel import EndpointsPanel
from .format import describe_error, file_size, milliseconds, shorten, timestamp

COLUMNS = ("id", "arch", "size", "quant", "context", "file", "GPU", "engine", "source", "sha256",
           "state")
ENGINE_CYCLE = {"auto": "worker", "worker": "server", "server": "auto"}
FINISHED = (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED)


@dataclass
class ModelRow:
    model: object  # workbench.store.ModelRecord
    benchmarks: list[dict]
    engine: str = "-"  # what replays of this model run on (managed llama-server or worker)
    engine_why: str = ""


def engine_of(model) -> tuple[str, str]:
    """(short name, explanation) of the engine a replay of ``model`` uses."""
    from workbench.experiments.arm_engines import engine_summary

    return engine_summary(model)


def rate(tokens_per_s: float | None, spec: str) -> str:
    return "-" if not tokens_per_s else f"{tokens_per_s:{spec}} tok/s"


class BenchmarkProgress(Message):
    """A benchmark run finished ``step`` of ``total`` generations."""

    def __init__(self, model_id: str, step: int, total: int):
        super().__init__()
        self.model_id, self.step, self.total = model_id, step, total


class BenchmarkCancelled(Exception):
    """The benchmark's worker was cancelled (the app is closing)."""


class ModelsScreen(WorkbenchScreen):
    TITLE = "Models"
    RELOAD_ON_SHOW = True
    HELP = """
Registered GGUF models: the bundled SmolLM2, files in the workspace models/ folder and files
added by path (a). Every file is checked before it is registered; a refused file shows why.

l loads the selected model in its own worker process (the UI never loads a model) and shows the
load time; u unloads it (ends that process). g sets n_gpu_layers, saved with the model and used
by every later load, benchmark and replay. e switches the engine replays use: auto (a managed
llama-server with continuous batching when a binary exists, else the embedded worker), worker,
or server; the engine column shows the one in effect.

The endpoints panel lists OpenAI-compatible servers (llama-server, vLLM, Ollama, LM Studio):
n adds one and probes it, p probes the selected one again. A variant can use an endpoint's
model instead of a local GGUF (New variant on the Experiments screen).

b benchmarks the selected model: a warm-up, then timed generations; the medians (prompt tok/s,
decode tok/s, time to first token) are stored and shown.
"""
    BINDINGS = [
        Binding("a", "add", "Add", tooltip="Add GGUF"),
        Binding("l", "load", "Load"),
        Binding("u", "unload", "Unload"),
        Binding("g", "gpu_layers", "GPU", tooltip="GPU layers"),
        Binding("b", "benchmark", "Bench", tooltip="Benchmark"),
        Binding("e", "engine", "Engine"),
        Binding("n", "add_endpoint", "Endpoint", tooltip="Add endpoint"),
        Binding("p", "probe_endpoint", "Probe", tooltip="Probe endpoint"),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, ModelRow] = {}
        self.states: dict[str, str] = {}  # model id -> "loading…", "loaded (0.4 s)", "load failed"

    def compose(self) -> ComposeResult:
        yield Header()
        table = DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
        for column in COLUMNS:
            table.add_column(column, key=column)
        yield table
        yield EndpointsPanel(id="endpoints-panel", classes="panel")
        with Horizontal(id="models-lower"):
            with VerticalScroll(id="model-detail", classes="panel"):
                yield Static("Loading models…", id="model-detail-text")
            with Vertical(id="benchmark-panel", classes="panel"):
                yield Label("Benchmark", classes="panel-title")
                yield ProgressBar(id="benchmark-progress", show_eta=False)
                yield Static("Press b to benchmark the selected model.", id="benchmark-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#benchmark-progress").display = False
        self.action_reload()

    # -- data --------------------------------------------------------------------------------
    def action_reload(self, select: str | None = None) -> None:
        def load(store) -> list[ModelRow]:
            return [ModelRow(m, store.benchmarks(m.id)[:5], *engine_of(m))
                    for m in store.list_models()]

        self.in_background(load, lambda rows: self.show_models(rows, select), name="loading models")

    def show_models(self, rows: list[ModelRow], select: str | None = None) -> None:
        table = self.query_one("#models-table", DataTable)
        current = select or self.selected_id()
        self.rows = {row.model.id: row for row in rows}
        table.clear()
        for row in rows:
            table.add_row(*self.cells(row), key=row.model.id)
        if current in self.rows:
            table.move_cursor(row=table.get_row_index(current))
        self.call_after_refresh(table.refresh)  # repaint the header at the new column widths
        self.show_detail()

    def cells(self, row: ModelRow) -> tuple:
        m = row.model
        return (m.id, m.architecture or "-", m.size_label or "-", m.file_type or "-",
                f"{m.context_length:,}" if m.context_length else "-", file_size(m.file_size),
                str(m.n_gpu_layers), row.engine, shorten(m.source, 16) or "-", (m.sha256 or "")[:8],
                self.states.get(m.id, ""))

    def selected_id(self) -> str | None:
        table = self.query_one("#models-table", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def set_state(self, model_id: str, state: str) -> None:
        self.states[model_id] = state
        table = self.query_one("#models-table", DataTable)
        if model_id in self.rows:
            table.update_cell(model_id, "state", state, update_width=True)
        self.show_detail()

    def show_detail(self) -> None:
        row = self.rows.get(self.selected_id() or "")
        text = self.query_one("#model-detail-text", Static)
        if row is None:
            text.update("No model registered. Press a to add a GGUF file by path.")
            return
        m = row.model
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for name, value in (
            ("name", m.name), ("path", m.path), ("architecture", m.architecture),
            ("parameters", f"{m.parameters:,}" if m.parameters else None),
            ("quantization", m.file_type), ("context length", m.context_length),
            ("file size", file_size(m.file_size)), ("sha256", m.sha256),
            ("chat template", "yes" if m.has_chat_template else "no (generic prompt format)"),
            ("GPU layers", m.n_gpu_layers), ("n_ctx", m.n_ctx),
            ("threads", m.n_threads or "auto"),
            ("engine", f"{m.engine}: replays run on {row.engine_why}"), ("source", m.source),
            ("state", self.states.get(m.id) or "not loaded"),
        ):
            grid.add_row(name, Text(str(value if value is not None else "-"), overflow="fold"))
        text.update(grid)
        self.show_benchmarks(row)

    def show_benchmarks(self, row: ModelRow) -> None:
        panel = self.query_one("#benchmark-text", Static)
        if not row.benchmarks:
            panel.update(Text("No benchmark yet. Press b to run one.", style="dim"))
            return
        latest, *earlier = row.benchmarks
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for name, value in (("prompt", rate(latest["prompt_tps"], ".0f")),
                            ("decode", rate(latest["decode_tps"], ".1f")),
                            ("TTFT", milliseconds(latest["ttft_ms"])),
                            ("GPU layers", str(latest["n_gpu_layers"])),
                            ("threads", str(latest["n_threads"])),
                            ("measured", timestamp(latest["created_at"]))):
            grid.add_row(name, value)
        lines = [Text("earlier", style="bold")] if earlier else []
        lines += [Text(f"{timestamp(b['created_at'])}  decode {rate(b['decode_tps'], '.1f')}  "
                       f"TTFT {milliseconds(b['ttft_ms'])}", style="dim") for b in earlier]
        panel.update(Group(grid, Text(""), *lines))

    # -- add ---------------------------------------------------------------------------------
    def action_add(self) -> None:
        fields = [Field("path", "Path to a GGUF file", placeholder="~/models/candidate.Q4_K_M.gguf"),
                  Field("model_id", "Model id (blank: from the file name)")]
        self.app.push_screen(
            FormDialog("Add a GGUF model", fields, ok="Add",
                       validate=lambda v: None if v["path"] else "Enter a path."),
            self.add_model)

    def add_model(self, values: dict | None) -> None:
        if not values:
            return
        from workbench.models.registry import Registry

        def add(store):
            return Registry(store, self.wb.workspace).add(values["path"],
                                                          model_id=values["model_id"] or None).id

        self.in_background(add, self.model_added, name="adding the model", group="add")

    def model_added(self, model_id: str) -> None:
        self.notify(f"Registered {model_id}.", title="Models")
        self.action_reload(select=model_id)

    def worker_failed(self, worker, error) -> None:
        if worker.group == "add":
            self.app.push_screen(MessageDialog("The file was refused", describe_error(error),
                                               error=True))
            return
        super().worker_failed(worker, error)

    # -- load / unload -----------------------------------------------------------------------
    def action_load(self) -> None:
        model_id = self.selected_id()
        if model_id is None:
            return
        if model_id in self.wb.loaded_models:
            self.notify(f"{model_id} is already loaded.", title="Models")
            return
        self.set_state(model_id, "loading…")
        self.load_model(model_id)

    @work(thread=True, exit_on_error=False, group="load-model")
    def load_model(self, model_id: str) -> None:
        from workbench.engines.llama_cpp import EngineSpec
        from workbench.engines.worker import ModelWorker
        from workbench.config import default_threads

        try:
            with self.wb.open_store() as store:
                model = store.get_model(model_id)
            spec = EngineSpec(model_path=model.path, n_ctx=model.n_ctx,
                              n_gpu_layers=model.n_gpu_layers,
                              n_threads=model.n_threads or default_threads(1))
            worker = ModelWorker(spec, label=f"ui-{model_id}", log_dir=self.wb.log_dir)
            self.wb.loaded_models[model_id] = worker  # so quitting ends the process
            info = worker.start()
        except Exception as exc:  # a refused or crashing model is reported, never raised
            self.wb.loaded_models.pop(model_id, None)
            self.post_message(ModelLoadFinished(model_id, None, describe_error(exc)))
            return
        self.post_message(ModelLoadFinished(model_id, info, None))

    def on_model_load_finished(self, message: "ModelLoadFinished") -> None:
        if message.error:
            self.set_state(message.model_id, "load failed")
            self.app.push_screen(MessageDialog(f"{message.model_id} failed to load",
                                               message.error, error=True))
            return
        info = message.info or {}
        gpu = f", {info.get('n_gpu_layers', 0)} GPU layers" if info.get("gpu_offload") else ""
        self.set_state(message.model_id, f"loaded ({info.get('load_ms', 0) / 1000:.1f} s{gpu})")
        self.notify(f"{message.model_id} loaded in {info.get('load_ms', 0):.0f} ms "
                    f"({info.get('n_threads')} threads).", title="Models")

    def action_unload(self) -> None:
        model_id = self.selected_id()
        worker = self.wb.loaded_models.pop(model_id, None) if model_id else None
        if worker is None:
            self.notify("The selected model is not loaded.", title="Models", severity="warning")
            return
        self.set_state(model_id, "unloading…")

        def close() -> str:
            worker.close()
            return model_id

        self.run_worker(close, name="unloading the model", thread=True, exit_on_error=False,
                        group="unload")

    # -- settings ----------------------------------------------------------------------------
    def action_gpu_layers(self) -> None:
        row = self.rows.get(self.selected_id() or "")
        if row is None:
            return

        def check(values: dict) -> str | None:
            try:
                return None if int(values["n_gpu_layers"]) >= -1 else "Use -1 (all) or more."
            except ValueError:
                return "Enter a whole number (-1 offloads every layer)."

        self.app.push_screen(FormDialog(
            f"GPU layers for {row.model.id}",
            [Field("n_gpu_layers", "n_gpu_layers (0 = CPU only, -1 = all layers)",
                   str(row.model.n_gpu_layers), type="integer")],
            ok="Save", validate=check,
            note="Used by every later load, benchmark and replay of this model."),
            lambda values: self.save_gpu_layers(row.model.id, values))

    def save_gpu_layers(self, model_id: str, values: dict | None) -> None:
        if not values:
            return
        layers = int(values["n_gpu_layers"])
        self.in_background(lambda store: store.set_model_settings(model_id, n_gpu_layers=layers),
                           lambda _: self.gpu_layers_saved(model_id, layers),
                           name="saving GPU layers", group="settings")

    def gpu_layers_saved(self, model_id: str, layers: int) -> None:
        loaded = " Unload and load it again to apply." if model_id in self.wb.loaded_models else ""
        self.notify(f"{model_id}: n_gpu_layers = {layers}.{loaded}", title="Models")
        self.action_reload(select=model_id)

    def action_add_endpoint(self) -> None:
        self.query_one(EndpointsPanel).action_add_endpoint()

    def action_probe_endpoint(self) -> None:
        self.query_one(EndpointsPanel).action_probe()

    def action_engine(self) -> None:
        row = self.rows.get(self.selected_id() or "")
        if row is None:
            return
        model_id, engine = row.model.id, ENGINE_CYCLE.get(row.model.engine, "auto")
        self.in_background(lambda store: store.set_model_settings(model_id, engine=engine),
                           lambda model: self.engine_saved(model),
                           name="saving the engine", group="settings")

    def engine_saved(self, model) -> None:
        self.notify(f"{model.id}: engine {model.engine} ({engine_of(model)[1]}).", title="Models")
        self.action_reload(select=model.id)

    # -- benchmark ---------------------------------------------------------------------------
    def action_benchmark(self) -> None:
        model_id = self.selected_id()
        if model_id is None:
            return
        bar = self.query_one("#benchmark-progress", ProgressBar)
        bar.display = True
        bar.update(total=self.wb.settings.benchmark_runs + 1, progress=0)
        self.query_one("#benchmark-text", Static).update(
            f"Benchmarking {model_id}: loading the model, warm-up, then "
            f"{self.wb.settings.benchmark_runs} timed runs…")
        self.benchmark(model_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="benchmark",
          name="benchmarking the model")
    def benchmark(self, model_id: str) -> str:
        from workbench.models.benchmark import benchmark_model

        worker = get_current_worker()

        def progress(step: int, total: int) -> None:
            if worker.is_cancelled:
                raise BenchmarkCancelled()
            self.post_message(BenchmarkProgress(model_id, step, total))

        settings = self.wb.settings
        with self.wb.open_store() as store:
            benchmark_model(store, model_id, log_dir=self.wb.log_dir, runs=settings.benchmark_runs,
                            max_tokens=settings.benchmark_max_tokens, on_progress=progress)
        return model_id

    def on_benchmark_progress(self, message: BenchmarkProgress) -> None:
        self.query_one("#benchmark-progress", ProgressBar).update(total=message.total,
                                                                  progress=message.step)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        group, state = event.worker.group, event.state
        if group == "benchmark" and state in FINISHED:
            self.query_one("#benchmark-progress").display = False
            if state == WorkerState.SUCCESS:
                self.notify(f"Benchmark of {event.worker.result} stored.", title="Models")
                self.action_reload(select=event.worker.result)
            else:
                self.show_detail()
        elif group == "unload" and state == WorkerState.SUCCESS:
            self.set_state(event.worker.result, "")


class ModelLoadFinished(Message):
    """A load started with `l` ended: ``info`` from the worker, or ``error``."""

    def __init__(self, model_id: str, info: dict | None, error: str | None):
        super().__init__()
        self.model_id, self.info, self.error = model_id, info, error
