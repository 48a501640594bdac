"""Dialogs of the Fine-tune screen: build training data, new job, export, A/B it.

Each form returns a spec dict (or None on Escape); a problem keeps the form open, shown in the
form and as a notification.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, SelectionList
from .widgets.safe import Label, Select, Static

from .finetune_view import QUANT_TYPES

LEVEL_CHOICES = (("excellent only", "excellent"), ("good or better", "good"),
                 ("fair or better", "fair"), ("everything (poor too)", "poor"))
FORMAT_CHOICES = (("OpenAI chat JSONL", "openai"), ("Anthropic messages JSONL", "anthropic"))
ENGINE_CHOICES = (("auto: Unsloth on a CUDA GPU when installed, else PEFT", "auto"),
                  ("peft", "peft"), ("unsloth (CUDA only)", "unsloth"))
SETTING_FIELDS = (  # (LoraSettings field, label, Input type)
    ("rank", "LoRA rank", "integer"), ("alpha", "Alpha", "integer"),
    ("dropout", "Dropout", "number"), ("target_modules", "Target modules", "text"),
    ("learning_rate", "Learning rate", "number"), ("epochs", "Epochs", "number"),
    ("max_steps", "Max steps", "integer"), ("seq_len", "Sequence length", "integer"),
    ("batch_size", "Batch size", "integer"), ("grad_accum", "Gradient accumulation", "integer"),
    ("warmup_steps", "Warmup steps", "integer"), ("seed", "Seed", "integer"),
    ("eval_every", "Eval every (steps)", "integer"),
    ("save_every", "Save every (steps)", "integer"))


@dataclass
class Choices:
    """What the forms offer, read from the store in a worker."""

    datasets: list[dict] = field(default_factory=list)  # with "categories": {name: count}
    models: list = field(default_factory=list)  # workbench.store.ModelRecord
    variants: list = field(default_factory=list)  # workbench.store.Variant
    products: list[str] = field(default_factory=list)  # models exported from the selected job
    latest_data: dict | None = None  # the newest train/validation files under jobs/data

    @classmethod
    def read(cls, store, *, categories: bool = False, job_id: int | None = None,
             jobs_dir: Path | None = None) -> "Choices":
        from .finetune_view import job_products, latest_data

        datasets = store.list_datasets()
        if categories:
            for d in datasets:
                counts: dict[str, int] = {}
                for item in store.items(d["id"]):
                    counts[item.category or "-"] = counts.get(item.category or "-", 0) + 1
                d["categories"] = dict(sorted(counts.items()))
        products = job_products(store, job_id)[0] if job_id is not None else []
        return cls(datasets, store.list_models(), store.list_variants(), products,
                   latest_data(jobs_dir) if jobs_dir else None)


def dataset_options(datasets: list[dict]) -> list[tuple[str, int]]:
    return [(f"{d['name']} ({d['n_items']} items)", d["id"]) for d in datasets]


def first(options, preferred=None):
    values = [value for _, value in options]
    if preferred in values:
        return preferred
    return values[0] if values else Select.NULL


class SpecForm(ModalScreen[dict | None]):
    """A titled form: fields in a scrollable grid, an error line, OK and Cancel."""

    TITLE_TEXT = ""
    OK = "OK"
    NOTE = ""
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self) -> None:
        super().__init__(classes="dialog")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-body form-body"):
            yield Label(self.TITLE_TEXT, classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                with Grid(classes="form-grid"):
                    yield from self.fields()
                yield from self.extra()
                if self.NOTE:
                    yield Static(self.NOTE, classes="dialog-note")
            yield Static("", id="dialog-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.OK, variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def fields(self) -> ComposeResult:
        yield from ()

    def extra(self) -> ComposeResult:
        yield from ()

    def collect(self) -> tuple[dict | None, str | None]:
        raise NotImplementedError

    def value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def choice(self, widget_id: str):
        value = self.query_one(f"#{widget_id}", Select).value
        return None if value == Select.NULL else value

    def submit(self) -> None:
        try:
            spec, problem = self.collect()
        except ValueError as exc:  # a number that does not parse, impossible settings
            spec, problem = None, str(exc)
        if problem:
            self.query_one("#dialog-error", Static).update(problem)
            self.notify(problem, title=self.TITLE_TEXT, severity="error")
            return
        self.dismiss(spec)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.submit() if event.button.id == "ok" else self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def action_cancel(self) -> None:
        self.dismiss(None)


def number(text: str, kind: type, label: str):
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{label}: {text!r} is not a {'whole ' if kind is int else ''}number") \
            from None


class BuildDataForm(SpecForm):
    """Dataset, quality, categories, balance, split and format of a training set."""

    AUTO_FOCUS = "#dataset"
    TITLE_TEXT = "Build training data"
    OK = "Build"
    NOTE = ("Best answer per incident: the expert reference or a replayed answer graded by "
            "ratings and scores. Writes train.jsonl and validation.jsonl under jobs/data/; "
            "secrets are flagged and redacted.")

    def __init__(self, choices: Choices, initial: dict | None = None):
        super().__init__()
        self.choices = choices
        self.initial = initial or {}

    def fields(self) -> ComposeResult:
        options = dataset_options(self.choices.datasets)
        yield Label("Dataset")
        yield Select(options, id="dataset", compact=True, allow_blank=not options,
                     value=first(options, self.initial.get("dataset_id")),
                     prompt="no dataset: import one on the Datasets screen")
        yield Label("Minimum quality")
        yield Select(LEVEL_CHOICES, id="min-quality", compact=True, allow_blank=False,
                     value=self.initial.get("min_quality", "good"))
        yield Label("Validation fraction")
        yield Input(str(self.initial.get("val_fraction", 0.1)), id="val-fraction", type="number",
                    compact=True)
        yield Label("Seed")
        yield Input(str(self.initial.get("seed", 0)), id="seed", type="integer", compact=True)
        yield Label("Format")
        yield Select(FORMAT_CHOICES, id="format", compact=True, allow_blank=False,
                     value=self.initial.get("fmt", "openai"))
        yield Label("Balance")
        yield Checkbox("same number of examples per category", self.initial.get("balance", False),
                       id="balance", compact=True)
        yield Label("References")
        yield Checkbox("use the expert reference answers", self.initial.get(
            "include_references", True), id="references", compact=True)

    def extra(self) -> ComposeResult:
        yield Label("Categories (none ticked: every category)", classes="form-section")
        yield SelectionList(id="categories", compact=True)

    def on_mount(self) -> None:
        self.fill_categories(self.initial.get("categories") or [])

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "dataset":
            self.fill_categories([])

    def fill_categories(self, ticked: list[str]) -> None:
        chosen = self.choice("dataset")
        dataset = next((d for d in self.choices.datasets if d["id"] == chosen), {})
        counts = dataset.get("categories", {})
        selection = self.query_one("#categories", SelectionList)
        selection.clear_options()
        selection.add_options([(f"{name} ({n})", name, name in ticked)
                               for name, n in counts.items()])

    def collect(self) -> tuple[dict | None, str | None]:
        dataset = self.choice("dataset")
        if dataset is None:
            return None, "Choose a dataset (import one on the Datasets screen, key 2)."
        fraction = number(self.value("val-fraction") or "0", float, "Validation fraction")
        if not 0.0 <= fraction < 1.0:
            return None, "The validation fraction must be at least 0 and below 1."
        return {"dataset_id": dataset, "min_quality": self.choice("min-quality"),
                "categories": list(self.query_one("#categories", SelectionList).selected),
                "balance": self.query_one("#balance", Checkbox).value,
                "include_references": self.query_one("#references", Checkbox).value,
                "val_fraction": fraction, "seed": number(self.value("seed") or "0", int, "Seed"),
                "fmt": self.choice("format")}, None


def setting_text(values: dict, name: str) -> str:
    value = values.get(name)
    if value is None:
        return ""
    return ",".join(value) if isinstance(value, list) else f"{value:g}" if isinstance(
        value, float) else str(value)


class NewJobForm(SpecForm):
    """Base model, data files and LoRA settings of a new fine-tune job."""

    AUTO_FOCUS = "#name"
    TITLE_TEXT = "New fine-tune job"
    OK = "Create and start"
    NOTE = ("The job runs as its own process: it keeps training if the workbench closes. Blank "
            "max steps: train for the given epochs.")

    def __init__(self, choices: Choices, initial: dict):
        super().__init__()
        self.choices = choices
        self.initial = initial  # form values: LoraSettings fields, name, model, path, train, val

    def fields(self) -> ComposeResult:
        models = [(m.id, m.id) for m in self.choices.models]
        get = self.initial.get
        yield Label("Name")
        yield Input(get("name", ""), placeholder="automatic: lora-<base>", id="name", compact=True)
        yield Label("Base model")
        yield Select(models, id="model", compact=True, allow_blank=True,
                     value=first(models, get("model")), prompt="no registered model")
        yield Label("…or base path")
        yield Input(get("path", ""), placeholder="a GGUF file or a Hugging Face folder",
                    id="path", compact=True)
        yield Label("Training file")
        yield Input(get("train", ""), placeholder="chat JSONL (d builds one)", id="train",
                    compact=True)
        yield Label("Validation file")
        yield Input(get("val", ""), placeholder="optional", id="val", compact=True)
        for name, label, kind in SETTING_FIELDS:
            yield Label(label)
            yield Input(setting_text(self.initial, name), id=name.replace("_", "-"), type=kind,
                        compact=True, placeholder="blank: by epochs" if name == "max_steps" else "")
        yield Label("Engine")
        yield Select(ENGINE_CHOICES, id="engine", compact=True, allow_blank=False,
                     value=get("engine", "auto"))

    def form_values(self) -> dict:
        """Every field as entered (to prefill the form again after a failed start)."""
        values = {name: self.value(name.replace("_", "-")) for name, _, _ in SETTING_FIELDS}
        values.update(name=self.value("name"), model=self.choice("model"), path=self.value("path"),
                      train=self.value("train"), val=self.value("val"),
                      engine=self.choice("engine"), dataset_id=self.initial.get("dataset_id"))
        return values

    def collect(self) -> tuple[dict | None, str | None]:
        from workbench.finetune.settings import LoraSettings

        values = self.form_values()
        base = values["path"] or values["model"]
        if not base:
            return None, "Choose a base model or give the path of a GGUF file or HF folder."
        if not values["train"]:
            return None, "Give a training file (press d on the screen to build one)."
        settings = {}
        for name, label, kind in SETTING_FIELDS:
            text = values[name]
            if name == "target_modules":
                settings[name] = [m.strip() for m in text.split(",") if m.strip()]
            elif name == "max_steps" and not text:
                settings[name] = None
            else:
                settings[name] = number(text, int if kind == "integer" else float, label)
        lora = LoraSettings(**settings, engine=values["engine"]).validate()
        return {"values": values, "base": base, "train": values["train"],
                "val": values["val"] or None, "name": values["name"] or None,
                "settings": lora, "dataset_id": values["dataset_id"]}, None


class ExportForm(SpecForm):
    """The quantization of an export."""

    AUTO_FOCUS = "#quantize"
    TITLE_TEXT = "Export to GGUF"
    OK = "Export"
    NOTE = ("Merges the LoRA into the base, writes an F16 GGUF and an adapter GGUF, quantizes, "
            "checks parity (transformers vs GGUF, chat template, F16 vs quantized) and registers "
            "the models. Takes minutes; the log on the right shows each step.")

    def __init__(self, job: dict):
        super().__init__()
        self.job = job

    def fields(self) -> ComposeResult:
        yield Label("Job")
        yield Static(f"{self.job['id']} · {self.job['name']}")
        yield Label("Quantization")
        yield Select([(q, q) for q in QUANT_TYPES], id="quantize", value="q8_0",
                     allow_blank=False, compact=True)

    def collect(self) -> tuple[dict | None, str | None]:
        return {"job_id": self.job["id"], "quantize_type": self.choice("quantize")}, None


class ABForm(SpecForm):
    """Candidate model, production variant, dataset and items of a shadow A/B."""

    AUTO_FOCUS = "#candidate"
    TITLE_TEXT = "A/B it: production vs the candidate"
    OK = "Create A/B"
    NOTE = ("A shadow experiment: A is the production variant, B the same prompt and sampling "
            "on the candidate model. Start it on the Experiments screen (s).")

    def __init__(self, choices: Choices, dataset_id: int | None = None):
        super().__init__()
        self.choices = choices
        self.dataset_id = dataset_id

    def fields(self) -> ComposeResult:
        models = [(m.id, m.id) for m in self.choices.models]
        variants = [(v.name, v.name) for v in self.choices.variants]
        datasets = dataset_options(self.choices.datasets)
        candidate = self.choices.products[-1] if self.choices.products else None
        yield Label("Candidate model")
        yield Select(models, id="candidate", compact=True, value=first(models, candidate),
                     prompt="no registered model")
        yield Label("Production variant")
        yield Select(variants, id="production", compact=True,
                     value=first(variants, "prod-triage"), prompt="no variant")
        yield Label("Dataset")
        yield Select(datasets, id="dataset", compact=True, value=first(datasets, self.dataset_id),
                     prompt="no dataset")
        yield Label("Items")
        yield Input("20", placeholder="all (or the first N)", id="limit", type="integer",
                    compact=True)

    def collect(self) -> tuple[dict | None, str | None]:
        spec = {"model_id": self.choice("candidate"), "production": self.choice("production"),
                "dataset": self.choice("dataset")}
        if None in spec.values():
            return None, "Choose a candidate model, a production variant and a dataset."
        limit = number(self.value("limit"), int, "Items") if self.value("limit") else None
        if limit is not None and limit < 1:
            return None, "Items must be at least 1 (or blank for all)."
        return {**spec, "limit": limit}, None
