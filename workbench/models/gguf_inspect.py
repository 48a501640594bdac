"""Read and check a GGUF file's header, metadata and tensor table without llama.cpp.

A hostile or damaged file can crash llama.cpp, so every file is checked here first: magic, version,
sane counts, every length inside the file, every tensor's data inside the file. Anything wrong
raises ``InvalidGGUF`` with a message an operator can act on.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_TENSORS = 1_000_000
MAX_KV = 1_000_000
MAX_DIMS = 4
DEFAULT_ALIGNMENT = 32

# GGUF value types -> struct format (scalars); 8 = string, 9 = array.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
# Metadata arrays longer than this are skipped over, not decoded (token lists, merges, scores).
_KEEP_ARRAY = 64


class InvalidGGUF(ValueError):
    """The file is not a usable GGUF model; the message says why."""


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int
    n_elements: int
    n_bytes: int


@dataclass
class GGUFInfo:
    path: Path
    version: int
    file_size: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    @property
    def parameters(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def context_length(self) -> int | None:
        return self.metadata.get(f"{self.architecture}.context_length")

    @property
    def file_type(self) -> str | None:
        """Quantization of the file, e.g. 'Q4_1', from general.file_type (else the commonest type)."""
        from gguf.constants import GGMLQuantizationType, LlamaFileType

        code = self.metadata.get("general.file_type")
        if code is not None:
            try:
                return LlamaFileType(code).name.replace("MOSTLY_", "").replace("ALL_", "")
            except ValueError:
                return f"type {code}"
        if not self.tensors:
            return None
        counts: dict[int, int] = {}
        for t in self.tensors:
            counts[t.ggml_type] = counts.get(t.ggml_type, 0) + t.n_bytes
        top = max(counts, key=counts.get)
        try:
            return GGMLQuantizationType(top).name
        except ValueError:
            return f"type {top}"


class _Cursor:
    def __init__(self, buf, path: Path):
        self.buf, self.pos, self.size, self.path = buf, 0, len(buf), path

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise InvalidGGUF(f"{self.path.name}: truncated or corrupt: {what} needs {n} bytes at "
                              f"offset {self.pos}, but the file has {self.size} bytes")

    def unpack(self, fmt: str, what: str):
        n = struct.calcsize("<" + fmt)
        self.need(n, what)
        value = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += n
        return value[0] if len(value) == 1 else value

    def string(self, what: str) -> str:
        length = self.unpack("Q", what)
        self.need(length, what)
        raw = bytes(self.buf[self.pos:self.pos + length])
        self.pos += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidGGUF(f"{self.path.name}: {what} is not valid UTF-8") from None

    def skip_string(self, what: str) -> None:
        length = self.unpack("Q", what)
        self.need(length, what)
        self.pos += length

    def value(self, vtype: int, what: str, depth: int = 0) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype], what)
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY and depth == 0:
            item_type, count = self.unpack("IQ", what)
            if item_type in _SCALARS:
                width = struct.calcsize("<" + _SCALARS[item_type])
                self.need(count * width, f"{what} ({count} items)")
                if count > _KEEP_ARRAY:
                    self.pos += count * width
                    return _Skipped(count)
                return [self.unpack(_SCALARS[item_type], what) for _ in range(count)]
            if item_type == _STRING:
                self.need(count * 8, f"{what} ({count} strings)")
                if count > _KEEP_ARRAY:
                    for _ in range(count):
                        self.skip_string(what)
                    return _Skipped(count)
                return [self.string(what) for _ in range(count)]
            raise InvalidGGUF(f"{self.path.name}: {what} has unsupported array item type {item_type}")
        raise InvalidGGUF(f"{self.path.name}: {what} has unknown value type {vtype}")


@dataclass(frozen=True)
class _Skipped:
    """A long metadata array (e.g. the token list): only its length is kept."""

    length: int


def _tensor_nbytes(ggml_type: int, n_elements: int, name: str, path: Path) -> int:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        raise InvalidGGUF(f"{path.name}: tensor {name!r} has unknown type {ggml_type}") from None
    if n_elements % block:
        raise InvalidGGUF(f"{path.name}: tensor {name!r} has {n_elements} elements, "
                          f"not a multiple of its block size {block}")
    return n_elements // block * type_size


def has_gguf_magic(path: str | Path) -> bool:
    """Whether the file starts with the GGUF magic (a cheap check before each load)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def inspect_gguf(path: str | Path) -> GGUFInfo:
    """Parse and check a GGUF file; raise ``InvalidGGUF`` with a clear reason if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise InvalidGGUF(f"{path}: no such file")
    size = path.stat().st_size
    if size < 24:
        raise InvalidGGUF(f"{path.name}: {size} bytes is too short for a GGUF header (24 bytes)")
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != MAGIC:
            raise InvalidGGUF(f"{path.name}: not a GGUF file (starts with {bytes(buf[:4])!r}, "
                              f"expected {MAGIC!r})")
        cur = _Cursor(buf, path)
        cur.pos = 4
        version, n_tensors, n_kv = cur.unpack("IQQ", "header")
        if version not in SUPPORTED_VERSIONS:
            raise InvalidGGUF(f"{path.name}: GGUF version {version} is not supported "
                              f"(supported: {', '.join(map(str, SUPPORTED_VERSIONS))})")
        if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
            raise InvalidGGUF(f"{path.name}: absurd header counts ({n_tensors} tensors, "
                              f"{n_kv} metadata keys)")
        info = GGUFInfo(path=path, version=version, file_size=size)
        for index in range(n_kv):
            key = cur.string(f"metadata key #{index}")
            vtype = cur.unpack("I", f"type of {key!r}")
            info.metadata[key] = cur.value(vtype, f"metadata {key!r}")
        for index in range(n_tensors):
            name = cur.string(f"tensor #{index} name")
            n_dims = cur.unpack("I", f"tensor {name!r} rank")
            if not 1 <= n_dims <= MAX_DIMS:
                raise InvalidGGUF(f"{path.name}: tensor {name!r} has {n_dims} dimensions "
                                  f"(1..{MAX_DIMS} allowed)")
            shape = tuple(cur.unpack("Q", f"tensor {name!r} shape") for _ in range(n_dims))
            ggml_type, offset = cur.unpack("IQ", f"tensor {name!r} type/offset")
            n_elements = 1
            for dim in shape:
                n_elements *= dim
            if n_elements == 0 or n_elements > size * 8:
                raise InvalidGGUF(f"{path.name}: tensor {name!r} has an impossible shape {shape}")
            n_bytes = _tensor_nbytes(ggml_type, n_elements, name, path)
            info.tensors.append(TensorInfo(name, shape, ggml_type, offset, n_elements, n_bytes))
    alignment = info.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise InvalidGGUF(f"{path.name}: general.alignment {alignment!r} is not a power of two")
    info.data_offset = -(-cur.pos // alignment) * alignment
    names: set[str] = set()
    for tensor in info.tensors:
        if tensor.name in names:
            raise InvalidGGUF(f"{path.name}: tensor {tensor.name!r} appears twice")
        names.add(tensor.name)
        end = info.data_offset + tensor.offset + tensor.n_bytes
        if tensor.offset % alignment or end > size:
            raise InvalidGGUF(f"{path.name}: truncated or corrupt: tensor {tensor.name!r} data ends "
                              f"at byte {end}, but the file has {size} bytes")
    if not info.tensors:
        raise InvalidGGUF(f"{path.name}: holds no tensors, so it is not a model")
    if not info.architecture:
        raise InvalidGGUF(f"{path.name}: general.architecture is missing")
    return info
