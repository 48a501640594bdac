"""Dialogs of the Experiments screen: create an experiment, create a variant."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, TextArea
from .widgets.safe import Label, Select, Static
from textual.worker import Worker, WorkerState

from .format import describe_error

MODES = (("shadow: A and B answer every item", "shadow"),
         ("split: weighted, sticky per user", "split"),
         ("canary: staged rollout, health checks, auto-rollback", "canary"))
CANARY_FIELDS = ("stages", "stage-requests", "check-every", "min-b", "max-p95", "max-error-ratio",
                 "max-unsafe")


@dataclass
class FormChoices:
    """What the create form offers, read from the store in a worker."""

    datasets: list[dict]
    variants: list  # workbench.store.Variant
    models: list  # workbench.store.ModelRecord
    endpoints: list = field(default_factory=list)  # workbench.store.Endpoint


def target_options(models: list, endpoints: list) -> list[tuple[str, str]]:
    """What a variant can run on: each local GGUF, and each model an endpoint offers."""
    options = [(f"{m.id} (local GGUF)", f"model:{m.id}") for m in models]
    for e in endpoints:
        names = list((e.probe or {}).get("models") or [])
        if e.model and e.model not in names:
            names.insert(0, e.model)
        options += [(f"{e.name}: {n} (endpoint)", f"endpoint:{e.name}:{n}") for n in names]
        if not names:
            options.append((f"{e.name}: its default model (endpoint)", f"endpoint:{e.name}:"))
    return options


def target_spec(value: str) -> dict:
    """The create_variant arguments of a ``target_options`` value."""
    kind, _, rest = value.partition(":")
    if kind == "model":
        return {"model_id": rest}
    name, _, model = rest.partition(":")
    return {"endpoint": name, "endpoint_model": model or None}


def describe_variant(variant) -> str:
    schema = ", triage JSON schema" if variant.json_schema else ""
    return (f"{variant.target} · temperature {variant.temperature:g} · "
            f"max {variant.max_tokens} tokens{schema}")


def _number(text: str, kind: type, default):
    return default if not text.strip() else kind(text)


class NewExperimentForm(ModalScreen[dict | None]):
    """Dataset, mode and the two variants of a new experiment."""

    AUTO_FOCUS = "#name"
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+n", "new_variant", "New variant")]

    def __init__(self, choices: FormChoices):
        super().__init__(classes="dialog")
        self.choices = choices

    def _default_variant(self, preferred: str, index: int):
        names = {v.name: v.id for v in self.choices.variants}
        if preferred in names:
            return names[preferred]
        return self.choices.variants[index].id if len(self.choices.variants) > index else Select.NULL

    def compose(self) -> ComposeResult:
        datasets = [(f"{d['name']} ({d['n_items']} items)", d["id"]) for d in self.choices.datasets]
        variants = [(v.name, v.id) for v in self.choices.variants]
        with Vertical(classes="dialog-body form-body"):
            yield Label("New experiment", classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                with Grid(classes="form-grid"):
                    yield Label("Name")
                    yield Input(placeholder="automatic: A vs B (mode)", id="name", compact=True)
                    yield Label("Dataset")
                    yield Select(datasets, id="dataset", compact=True, allow_blank=not datasets,
                                 prompt="no dataset: import one on the Datasets screen")
                    yield Label("Items")
                    yield Input(placeholder="all (or the first N)", id="limit", type="integer",
                                compact=True)
                    yield Label("Mode")
                    yield Select(MODES, id="mode", value="shadow", allow_blank=False, compact=True)
                    yield Label("Weight of B")
                    yield Input("0.5", id="weight", type="number", compact=True, disabled=True)
                    yield Label("Canary users")
                    yield Input(placeholder="u-alice, u-bob", id="canary", compact=True,
                                disabled=True)
                    yield from self._canary_fields()
                    yield Label("Variant A (prod)")
                    yield Select(variants, id="variant-a", compact=True,
                                 value=self._default_variant("prod-triage", 0))
                    yield Label("Variant B (candidate)")
                    yield Select(variants, id="variant-b", compact=True,
                                 value=self._default_variant("candidate-json-triage", 1))
                    yield Label("Variant C (optional)")
                    yield Select(variants, id="variant-c", compact=True,
                                 prompt="none: an A/B (a third arm needs shadow mode)")
                yield Static("", id="variant-summary", classes="dialog-note")
            yield Static("", id="dialog-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create and start", variant="primary", id="create-start")
                yield Button("Create", id="create")
                yield Button("New variant…", id="new-variant")
                yield Button("Cancel", id="cancel")

    @staticmethod
    def _canary_fields() -> ComposeResult:
        from workbench.experiments.canary import CanarySchedule

        d = CanarySchedule()
        for label, field_id, value, kind, hint in (
                ("Canary stages %", "stages", ",".join(f"{p:g}" for p in d.stages), "text",
                 "seed, navaflow, 10,50,100 or fixed"),
                ("Requests a stage", "stage-requests", "", "integer", "blank: spread evenly"),
                ("Check every N", "check-every", str(d.check_every), "integer", ""),
                ("Checks from B runs", "min-b", str(d.min_b), "integer", ""),
                ("Roll back: p95 ms >", "max-p95", f"{d.max_p95_ms:g}", "number", ""),
                ("Roll back: errors ×A >", "max-error-ratio", f"{d.max_error_ratio:g}", "number",
                 ""),
                ("Roll back: unsafe >", "max-unsafe", f"{d.max_safety_rate:g}", "number",
                 "a rate, 0 to 1")):
            yield Label(label)
            yield Input(value, id=field_id, type=kind, placeholder=hint, compact=True,
                        disabled=True)

    def on_mount(self) -> None:
        self.describe_choice()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "mode":
            self._enable_mode_fields(event.value)
        self.describe_choice()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "stages":
            self._enable_mode_fields(self.query_one("#mode", Select).value)

    def _enable_mode_fields(self, mode) -> None:
        fixed = self.query_one("#stages", Input).value.strip().lower() == "fixed"
        self.query_one("#weight", Input).disabled = mode == "shadow" or (
            mode == "canary" and not fixed)
        self.query_one("#canary", Input).disabled = mode != "canary"
        for field_id in CANARY_FIELDS:
            self.query_one(f"#{field_id}", Input).disabled = mode != "canary" or (
                fixed and field_id != "stages")

    def _schedule(self) -> tuple[dict | None, str | None]:
        """The staged canary's schedule from the form (None with 'fixed'), or what is wrong."""
        from workbench.experiments.canary import CanarySchedule

        text = {f: self.query_one(f"#{f}", Input).value.strip() for f in CANARY_FIELDS}
        if text["stages"].lower() == "fixed":
            return None, None
        d = CanarySchedule()
        try:
            return CanarySchedule(
                stages=CanarySchedule.parse_stages(text["stages"] or "seed"),
                stage_requests=_number(text["stage-requests"], int, None),
                check_every=_number(text["check-every"], int, d.check_every),
                min_b=_number(text["min-b"], int, d.min_b),
                max_p95_ms=_number(text["max-p95"], float, d.max_p95_ms),
                max_error_ratio=_number(text["max-error-ratio"], float, d.max_error_ratio),
                max_safety_rate=_number(text["max-unsafe"], float, d.max_safety_rate)).to_dict(), None
        except ValueError as exc:
            return None, f"{str(exc)[:1].upper()}{str(exc)[1:]}."  # the messages name the canary

    def describe_choice(self) -> None:
        by_id = {v.id: v for v in self.choices.variants}
        lines = []
        for arm in ("a", "b", "c"):
            variant = by_id.get(self.query_one(f"#variant-{arm}", Select).value)
            if variant is not None:
                lines.append(f"{arm.upper()}: {describe_variant(variant)}")
        self.query_one("#variant-summary", Static).update("\n".join(lines))

    def collect(self) -> tuple[dict | None, str | None]:
        """The form as a spec for the store, or the reason it cannot be created."""
        dataset = self.query_one("#dataset", Select).value
        a, b = (self.query_one(f"#variant-{arm}", Select).value for arm in ("a", "b"))
        if dataset == Select.NULL:
            return None, "Choose a dataset (import one on the Datasets screen, key 2)."
        if a == Select.NULL or b == Select.NULL:
            return None, "Choose a variant for A and for B."
        if a == b:
            return None, "A and B need different variants (for an A/A test, create a copy)."
        c = self.query_one("#variant-c", Select).value
        c = None if c == Select.NULL else c
        if c is not None and c in (a, b):
            return None, "C needs a variant of its own."
        try:
            limit = _number(self.query_one("#limit", Input).value, int, None)
            weight = _number(self.query_one("#weight", Input).value, float, 0.5)
        except ValueError:
            return None, "Items must be a whole number and the weight a number."
        if limit is not None and limit < 1:
            return None, "Items must be at least 1 (or blank for all)."
        if not 0.0 <= weight <= 1.0:
            return None, "The weight of B must be between 0 and 1."
        mode = self.query_one("#mode", Select).value
        if c is not None and mode != "shadow":
            return None, "Three arms need shadow mode (split and canary route between A and B)."
        names = {v.id: v.name for v in self.choices.variants}
        arms = {"A": a, "B": b, **({"C": c} if c is not None else {})}
        name = self.query_one("#name", Input).value.strip() or \
            f"{' vs '.join(names[v] for v in arms.values())} ({mode})"
        users = [u.strip() for u in self.query_one("#canary", Input).value.split(",") if u.strip()]
        schedule, problem = self._schedule() if mode == "canary" else (None, None)
        if problem:
            return None, problem
        if schedule is not None and not 0.0 <= schedule["max_safety_rate"] <= 1.0:
            return None, "The canary's unsafe rate limit is a rate between 0 and 1."
        return {"name": name, "dataset_id": dataset, "item_limit": limit, "mode": mode,
                "weight_b": 0.0 if schedule else weight,
                "canary_users": users if mode == "canary" else [],
                "canary_schedule": schedule, "arms": arms}, None

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "new-variant":
            self.action_new_variant()
        else:
            spec, problem = self.collect()
            if problem:
                self.query_one("#dialog-error", Static).update(problem)
                return
            self.dismiss({**spec, "start": event.button.id == "create-start"})

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#create-start", Button).press()

    def action_cancel(self) -> None:
        self.dismiss(None)

    # -- a new variant, created from inside this form -----------------------------------------
    def action_new_variant(self) -> None:
        self.app.push_screen(NewVariantForm(target_options(self.choices.models,
                                                           self.choices.endpoints),
                                            [v.name for v in self.choices.variants]),
                             self.create_variant)

    def create_variant(self, spec: dict | None) -> None:
        if not spec:
            return

        def create():
            from workbench.models.registry import check_lora_adapter

            if spec.get("lora_path"):
                spec["lora_path"] = check_lora_adapter(spec["lora_path"])
            with self.app.open_store() as store:
                return store.create_variant(**spec)

        self.run_worker(create, name="creating the variant", thread=True, exit_on_error=False,
                        group="variant")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.query_one("#dialog-error", Static).update(describe_error(event.worker.error))
        elif event.state == WorkerState.SUCCESS:
            variant = event.worker.result
            self.choices.variants.append(variant)
            options = [(v.name, v.id) for v in self.choices.variants]
            for arm in ("a", "b", "c"):
                select = self.query_one(f"#variant-{arm}", Select)
                value = select.value
                select.set_options(options)
                select.value = variant.id if arm == "b" else value
            self.notify(f"Variant {variant.name} created and set as B.", title="Experiments")


class NewVariantForm(ModalScreen[dict | None]):
    """Model, system prompt and sampling of a new variant."""

    AUTO_FOCUS = "#variant-name"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, targets: list[tuple[str, str]], taken_names: list[str]):
        super().__init__(classes="dialog")
        self.targets = targets  # target_options(): local GGUFs and endpoint models
        self.taken = set(taken_names)

    def compose(self) -> ComposeResult:
        from workbench.workspace import TRIAGE_SYSTEM

        models = self.targets
        with Vertical(classes="dialog-body form-body"):
            yield Label("New variant", classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                with Grid(classes="form-grid"):
                    yield Label("Name")
                    yield Input(placeholder="e.g. candidate-q4-t0.2", id="variant-name", compact=True)
                    yield Label("Model")
                    yield Select(models, id="model", compact=True, allow_blank=not models,
                                 value=models[0][1] if models else Select.NULL)
                    yield Label("LoRA adapter")
                    yield Input(placeholder="optional: adapter .gguf on the local model",
                                id="lora", compact=True)
                    yield Label("Temperature")
                    yield Input("0", id="temperature", type="number", compact=True)
                    yield Label("Max tokens")
                    yield Input("128", id="max-tokens", type="integer", compact=True)
                    yield Label("JSON output")
                    yield Checkbox("answer with the triage JSON schema", id="json-schema",
                                   compact=True)
                yield Label("System prompt")
                yield TextArea(TRIAGE_SYSTEM, id="system-prompt", soft_wrap=True)
            yield Static("", id="dialog-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create variant", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "cancel":
            self.dismiss(None)
            return
        spec, problem = self.collect()
        if problem:
            self.query_one("#dialog-error", Static).update(problem)
        else:
            self.dismiss(spec)

    def collect(self) -> tuple[dict | None, str | None]:
        from workbench.workspace import TRIAGE_SCHEMA

        name = self.query_one("#variant-name", Input).value.strip()
        model = self.query_one("#model", Select).value
        if not name:
            return None, "Give the variant a name."
        if name in self.taken:
            return None, f"A variant named {name!r} already exists."
        if model == Select.NULL:
            return None, "Choose a model (add one on the Models screen, key 1)."
        target = target_spec(model)
        lora = self.query_one("#lora", Input).value.strip() or None
        if lora and "endpoint" in target:
            return None, "A LoRA adapter goes with a local GGUF, not an endpoint model."
        if lora:
            target["lora_path"] = lora  # checked (is it an adapter GGUF?) when it is created
        try:
            temperature = _number(self.query_one("#temperature", Input).value, float, 0.0)
            max_tokens = _number(self.query_one("#max-tokens", Input).value, int, 128)
        except ValueError:
            return None, "Temperature must be a number and max tokens a whole number."
        if not 0.0 <= temperature <= 2.0 or max_tokens < 1:
            return None, "Temperature must be within 0-2 and max tokens at least 1."
        system = self.query_one("#system-prompt", TextArea).text.strip() or None
        schema = TRIAGE_SCHEMA if self.query_one("#json-schema", Checkbox).value else None
        return {"name": name, **target, "system_prompt": system,
                "temperature": temperature, "max_tokens": max_tokens, "json_schema": schema}, None

    def action_cancel(self) -> None:
        self.dismiss(None)
