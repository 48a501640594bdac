"""The endpoints panel of the Models screen: OpenAI-compatible servers (add with n, probe with p)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from .widgets.safe import DataTable, Label

from .dialogs import Field, FormDialog

COLUMNS = ("endpoint", "base url", "engine", "version", "models", "key from")


def probe_summary(probe: dict | None) -> str:
    """A one-line summary of what a probe found."""
    if not probe:
        return "not probed"
    models = probe.get("models") or []
    extra = [f"{probe['slots']} slots" if probe.get("slots") else "",
             f"context {probe['n_ctx']}" if probe.get("n_ctx") else ""]
    return ", ".join(x for x in [", ".join(models[:3]) + ("…" if len(models) > 3 else ""), *extra]
                     if x) or "no models listed"


class EndpointsPanel(Vertical):
    """Lists the workspace's endpoints; the Models screen's n adds one (and probes it), p probes
    the selected one."""

    def compose(self) -> ComposeResult:
        yield Label("Endpoints: OpenAI-compatible servers (llama-server, vLLM, Ollama, LM Studio)"
                    " · n add · p probe", classes="panel-title")
        table = DataTable(id="endpoints-table", cursor_type="row", zebra_stripes=True)
        for column in COLUMNS:
            table.add_column(column, key=column)
        yield table

    def on_mount(self) -> None:
        self.reload()

    @property
    def owner(self):
        return self.screen  # a WorkbenchScreen: runs store jobs in the background

    def reload(self, select: str | None = None) -> None:
        self.owner.in_background(lambda store: store.list_endpoints(),
                                 lambda rows: self.show(rows, select), name="loading endpoints",
                                 group="endpoints")

    def show(self, endpoints: list, select: str | None = None) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for e in endpoints:
            table.add_row(e.name, e.base_url, e.kind or "-", e.version or "-",
                          probe_summary(e.probe), f"${e.api_key_env}" if e.api_key_env else "-",
                          key=e.name)
        if not endpoints:
            table.add_row("(none)", "press n to add one", "", "", "", "", key="")
        elif select:
            table.move_cursor(row=table.get_row_index(select))

    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return key or None

    def action_add_endpoint(self) -> None:
        fields = [Field("name", "Name", placeholder="ollama"),
                  Field("base_url", "Base URL", placeholder="http://127.0.0.1:11434"),
                  Field("api_key_env", "API key environment variable (blank: none)",
                        placeholder="OPENAI_API_KEY"),
                  Field("model", "Default model (blank: choose per variant)")]

        def check(values: dict) -> str | None:
            if not values["name"]:
                return "Give the endpoint a name."
            if not values["base_url"].startswith(("http://", "https://")):
                return "The base URL starts with http:// or https://."
            return None

        self.app.push_screen(FormDialog(
            "Add an endpoint", fields, ok="Add and probe", validate=check,
            note="Only the NAME of the key's environment variable is stored, never the key."),
            self.add)

    def add(self, values: dict | None) -> None:
        if not values:
            return

        def job(store):
            store.add_endpoint(values["name"], values["base_url"],
                               api_key_env=values["api_key_env"] or None,
                               model=values["model"] or None)
            return values["name"], _probe(store, values["name"])

        self.owner.in_background(job, self.probed, name="adding the endpoint", group="endpoints")

    def action_probe(self) -> None:
        name = self.selected()
        if not name:
            self.app.notify("Select an endpoint (or add one with n).", severity="warning")
            return
        self.owner.in_background(lambda store: (name, _probe(store, name)), self.probed,
                                 name=f"probing {name}", group="endpoints")

    def probed(self, result: tuple[str, str | None]) -> None:
        name, problem = result
        if problem:
            self.app.notify(f"{name}: {problem}", title="Endpoint not reachable",
                            severity="warning", timeout=10)
        else:
            self.app.notify(f"{name} probed.", title="Endpoints")
        self.reload(select=name)


def _probe(store, name: str) -> str | None:
    """Probe and record; return a problem (the endpoint is kept) or None."""
    from workbench.models.endpoints import ProbeError, probe_and_record

    try:
        probe_and_record(store, name)
    except ProbeError as exc:
        return str(exc)
    return None
