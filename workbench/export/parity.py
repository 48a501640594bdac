"""Parity checks for exported models: does the GGUF answer like the model it came from?

(a) ``check_hf_vs_gguf``: greedy outputs of a transformers model vs a GGUF in llama.cpp;
(b) ``check_gguf_parity``: two GGUFs in llama.cpp (F16 vs quantized, merged vs base + adapter);
(c) ``check_chat_template``: tokenizer metadata and chat template carried over from the base.

llama.cpp always runs in a model worker process (``ModelWorker``), which returns text; texts of
both sides are tokenized with the same tokenizer before they are compared. Agreement of a prompt
is the common prefix of the two greedy token sequences over the longer one (greedy decoding makes
everything after a first divergence incomparable); the overall figure is token-weighted.

Two GGUFs are also compared by **teacher-forced top-1 agreement** (what llama.cpp's perplexity
tool calls "same top p"): the candidate is made to follow the reference's greedy tokens, and each
position counts when the reference token is also the candidate's own first choice. One near tie
costs one token instead of the rest of the answer, so this figure is stable across machines and
prompt sets, and it is the one the gates of ``check_gguf_parity`` are set on.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PROMPTS = [
    "The payments database primary is down and every checkout fails. What severity is this?",
    "Summarize in one sentence: disk usage on the log volume reached 95% overnight.",
    "Give three steps to investigate a sudden rise in HTTP 502 errors.",
    "What is the capital of France?",
]
SAMPLE_CONVERSATION = [
    {"role": "system", "content": "You are an on-call assistant."},
    {"role": "user", "content": "Is a failed nightly backup an incident?"},
    {"role": "assistant", "content": "Yes, a low-severity one."},
    {"role": "user", "content": "Who should be paged?"},
]
TOKENIZER_KEYS = ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                  "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.scores",
                  "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                  "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id",
                  "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
                  "tokenizer.chat_template")


@dataclass
class PromptParity:
    """One prompt's greedy outputs on both sides and where they part."""

    prompt: str
    reference_text: str
    candidate_text: str
    reference_tokens: list[int]
    candidate_tokens: list[int]
    common_prefix: int
    first_divergence: int | None  # token index, None when the sequences are equal
    reference_token: str | None = None  # the tokens at the first divergence (decoded)
    candidate_token: str | None = None
    forced_matches: int | None = None  # teacher forcing: positions where the candidate's top-1
    forced_total: int | None = None  # ... was the reference's token, out of this many
    reference_prompt_tokens: int | None = None
    candidate_prompt_tokens: int | None = None
    error: str | None = None

    @property
    def length(self) -> int:
        return max(len(self.reference_tokens), len(self.candidate_tokens))

    @property
    def agreement(self) -> float:
        if self.error is not None:
            return 0.0
        return 1.0 if self.length == 0 else self.common_prefix / self.length

    @property
    def exact(self) -> bool:
        return self.error is None and self.first_divergence is None


@dataclass
class ParityResult:
    """The outcome of one check; ``to_dict()`` for JSON, ``store_result()`` for the database."""

    kind: str  # 'hf_vs_gguf' | 'gguf_vs_gguf' | 'chat_template'
    reference: str
    candidate: str
    prompts: list[PromptParity] = field(default_factory=list)
    chat_template_ok: bool | None = None
    threshold: float | None = None
    advisory: bool = False  # below the threshold is a warning, not a failure (see parity_gates)
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n_prompts(self) -> int:
        return len(self.prompts)

    @property
    def token_agreement(self) -> float | None:
        """Token-weighted common-prefix agreement over the prompts that ran (None if none did)."""
        return _pooled([(p.common_prefix, p.length) for p in self.prompts if p.error is None])

    @property
    def forced_agreement(self) -> float | None:
        """Teacher-forced top-1 agreement over the prompts that ran (None if not measured)."""
        return _pooled([(p.forced_matches, p.forced_total) for p in self.prompts
                        if p.error is None and p.forced_total is not None])

    @property
    def agreement(self) -> float | None:
        """The figure the threshold applies to: teacher-forced when measured, else greedy."""
        forced = self.forced_agreement
        return forced if forced is not None else self.token_agreement

    @property
    def exact_matches(self) -> int:
        return sum(p.exact for p in self.prompts)

    @property
    def errors(self) -> list[str]:
        return [p.error for p in self.prompts if p.error]

    @property
    def passed(self) -> bool:
        if self.errors or self.chat_template_ok is False:
            return False
        agreement = self.agreement
        if agreement is None:
            return bool(self.chat_template_ok)
        return agreement >= (self.threshold or 0.0)

    @property
    def verdict(self) -> str:
        """'passed', 'failed', or 'advisory' (below an advisory threshold; not a failure)."""
        if self.passed:
            return "passed"
        return "advisory" if self.advisory and not self.errors else "failed"

    def to_dict(self) -> dict:
        out = asdict(self)
        for item, prompt in zip(out["prompts"], self.prompts):
            item.update(agreement=prompt.agreement, exact=prompt.exact)
        out.update(n_prompts=self.n_prompts, token_agreement=self.token_agreement,
                   forced_agreement=self.forced_agreement, agreement=self.agreement,
                   errors=self.errors, exact_matches=self.exact_matches, passed=self.passed,
                   verdict=self.verdict)
        return out


def _pooled(counts: list[tuple[int, int]]) -> float | None:
    """Agreeing tokens over all tokens of (agreeing, total) pairs; None for no pairs."""
    if not counts:
        return None
    total = sum(t for _, t in counts)
    return 1.0 if total == 0 else sum(a for a, _ in counts) / total


def compare(prompt: str, ref_text: str, cand_text: str, tokenizer, **extra) -> PromptParity:
    """Tokenize both texts with ``tokenizer`` and find their first divergence."""
    ref = tokenizer.encode(ref_text, add_special_tokens=False)
    cand = tokenizer.encode(cand_text, add_special_tokens=False)
    prefix = 0
    for a, b in zip(ref, cand):
        if a != b:
            break
        prefix += 1
    diverged = None if ref == cand else prefix
    piece = (lambda ids: tokenizer.decode([ids[prefix]]) if prefix < len(ids) else "<end>")
    return PromptParity(prompt=prompt, reference_text=ref_text, candidate_text=cand_text,
                        reference_tokens=ref, candidate_tokens=cand, common_prefix=prefix,
                        first_divergence=diverged,
                        reference_token=None if diverged is None else piece(ref),
                        candidate_token=None if diverged is None else piece(cand), **extra)


def _messages(prompt: str | list[dict]) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def _label(prompt: str | list[dict]) -> str:
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]


def hf_greedy(model, tokenizer, prompts: list, *, max_new_tokens: int = 32) -> list[dict]:
    """Greedy chat completions in transformers: text, generated ids and prompt token count."""
    import torch

    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    out = []
    for prompt in prompts:
        text = tokenizer.apply_chat_template(_messages(prompt), tokenize=False,
                                             add_generation_prompt=True)
        enc = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            ids = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                 eos_token_id=eos, pad_token_id=pad, temperature=None,
                                 top_p=None, top_k=None)
        new = ids[0, enc["input_ids"].shape[1]:].tolist()
        if new and new[-1] == eos:
            new = new[:-1]
        out.append({"text": tokenizer.decode(new, skip_special_tokens=True), "ids": new,
                    "prompt_tokens": int(enc["input_ids"].shape[1])})
    return out


def llama_greedy(gguf_path: str | Path, prompts: list, *, max_new_tokens: int = 32,
                 lora_path: str | Path | None = None, n_threads: int | None = None,
                 n_ctx: int = 2048, log_dir: Path | None = None,
                 options: list[dict] | None = None) -> list:
    """Greedy chat completions of a GGUF (optionally + LoRA) in a llama.cpp worker process.

    ``options``: per prompt, extra engine options (``return_tokens``, ``force_tokens``).
    """
    from ..engines.base import GenerationRequest
    from ..engines.llama_cpp import EngineSpec
    from ..engines.worker import ModelWorker

    spec = EngineSpec(model_path=str(gguf_path), n_ctx=n_ctx, n_threads=n_threads,
                      lora_path=str(lora_path) if lora_path else None)
    options = options or [{}] * len(prompts)
    with ModelWorker(spec, label=f"parity-{Path(gguf_path).stem}", log_dir=log_dir) as worker:
        return [worker.generate(GenerationRequest(messages=_messages(p), temperature=0.0,
                                                  max_tokens=max_new_tokens, seed=0), option)
                for p, option in zip(prompts, options)]


def check_hf_vs_gguf(model, tokenizer, gguf_path: str | Path, prompts: list | None = None, *,
                     max_new_tokens: int = 32, lora_path: str | Path | None = None,
                     threshold: float = 0.9, n_threads: int | None = None,
                     reference_name: str = "transformers",
                     reference: list[dict] | None = None) -> ParityResult:
    """(a) Greedy outputs of ``model`` in transformers vs ``gguf_path`` in llama.cpp.

    ``reference``: ``hf_greedy`` outputs already computed for these prompts (saves a rerun).
    """
    started = time.perf_counter()
    prompts = prompts or DEFAULT_PROMPTS
    ref = reference or hf_greedy(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
    cand = llama_greedy(gguf_path, prompts, max_new_tokens=max_new_tokens, lora_path=lora_path,
                        n_threads=n_threads)
    result = ParityResult("hf_vs_gguf", reference_name, str(gguf_path), threshold=threshold,
                          details={"max_new_tokens": max_new_tokens,
                                   "lora_path": lora_path and str(lora_path)})
    for prompt, r, c in zip(prompts, ref, cand):
        result.prompts.append(compare(_label(prompt), r["text"], c.text, tokenizer,
                                      reference_prompt_tokens=r["prompt_tokens"],
                                      candidate_prompt_tokens=c.prompt_tokens, error=c.error))
    result.details["prompt_tokens_match"] = all(
        p.reference_prompt_tokens == p.candidate_prompt_tokens for p in result.prompts)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def check_gguf_parity(reference_gguf: str | Path, candidate_gguf: str | Path,
                      prompts: list | None = None, *, tokenizer=None, max_new_tokens: int = 32,
                      reference_lora: str | Path | None = None,
                      candidate_lora: str | Path | None = None, threshold: float = 0.5,
                      n_threads: int | None = None) -> ParityResult:
    """(b) Two GGUFs in llama.cpp: e.g. F16 vs its quantization, or merged vs base + adapter.

    ``tokenizer`` (an HF tokenizer) defaults to the one rebuilt from the reference GGUF.
    """
    from .hf_loader import load_tokenizer

    started = time.perf_counter()
    prompts = prompts or DEFAULT_PROMPTS
    tokenizer = tokenizer or load_tokenizer(reference_gguf)
    ref = llama_greedy(reference_gguf, prompts, max_new_tokens=max_new_tokens,
                       lora_path=reference_lora, n_threads=n_threads,
                       options=[{"return_tokens": True}] * len(prompts))
    forcing = [{"force_tokens": r.extra.get("tokens", [])} for r in ref]
    both = llama_greedy(candidate_gguf, prompts * 2, max_new_tokens=max_new_tokens,
                        lora_path=candidate_lora, n_threads=n_threads,
                        options=[{}] * len(prompts) + forcing)
    cand, forced = both[:len(prompts)], both[len(prompts):]
    names = [str(reference_gguf) + (f" + {reference_lora}" if reference_lora else ""),
             str(candidate_gguf) + (f" + {candidate_lora}" if candidate_lora else "")]
    result = ParityResult("gguf_vs_gguf", *names, threshold=threshold,
                          details={"max_new_tokens": max_new_tokens})
    for prompt, r, c, f in zip(prompts, ref, cand, forced):
        result.prompts.append(compare(_label(prompt), r.text, c.text, tokenizer,
                                      reference_prompt_tokens=r.prompt_tokens,
                                      candidate_prompt_tokens=c.prompt_tokens,
                                      forced_matches=f.extra.get("forced_matches"),
                                      forced_total=len(r.extra.get("tokens", [])),
                                      error=r.error or c.error or f.error))
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def render_chat(meta: dict, messages: list[dict]) -> str:
    """Render a conversation with a GGUF's template as llama-cpp-python does (jinja2 sandbox)."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def fail(message):
        raise ValueError(message)

    tokens = meta["tokenizer.ggml.tokens"][0]
    special = {k: tokens[meta[f"tokenizer.ggml.{k}_token_id"][0]]
               for k in ("bos", "eos") if f"tokenizer.ggml.{k}_token_id" in meta}
    env = ImmutableSandboxedEnvironment(loader=jinja2.BaseLoader(), trim_blocks=True,
                                        lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    template = env.from_string(meta["tokenizer.chat_template"][0])
    return template.render(messages=messages, add_generation_prompt=True, raise_exception=fail,
                           bos_token=special.get("bos", ""), eos_token=special.get("eos", ""))


def check_chat_template(base_gguf: str | Path, candidate_gguf: str | Path, *,
                        conversation: list[dict] | None = None,
                        run_llama: bool = True, n_threads: int | None = None) -> ParityResult:
    """(c) The candidate carries the base's tokenizer and chat template, and formats alike.

    Compares the tokenizer metadata key by key, renders a sample conversation with both templates,
    and (``run_llama``) checks llama.cpp turns it into the same number of prompt tokens.
    """
    from .gguf_writer import read_base_metadata

    started = time.perf_counter()
    conversation = conversation or SAMPLE_CONVERSATION
    base, cand = read_base_metadata(base_gguf), read_base_metadata(candidate_gguf)
    differing = [k for k in TOKENIZER_KEYS
                 if _digest(base.get(k, (None,))[0]) != _digest(cand.get(k, (None,))[0])]
    details: dict[str, Any] = {"differing_keys": differing,
                               "has_template": "tokenizer.chat_template" in base}
    ok = not differing and "tokenizer.chat_template" in base
    if "tokenizer.chat_template" in base and "tokenizer.chat_template" in cand:
        rendered = render_chat(base, conversation), render_chat(cand, conversation)
        details["rendered_equal"] = rendered[0] == rendered[1]
        details["rendered"] = rendered[1]
        ok = ok and details["rendered_equal"]
    if run_llama and ok:
        counts = [llama_greedy(path, [conversation], max_new_tokens=1, n_threads=n_threads)[0]
                  for path in (base_gguf, candidate_gguf)]
        details["llama_prompt_tokens"] = [g.prompt_tokens for g in counts]
        details["llama_errors"] = [g.error for g in counts if g.error]
        ok = (not details["llama_errors"] and counts[0].prompt_tokens == counts[1].prompt_tokens)
    return ParityResult("chat_template", str(base_gguf), str(candidate_gguf),
                        chat_template_ok=ok, details=details,
                        seconds=round(time.perf_counter() - started, 3))


def store_result(store, result: ParityResult, *, model_id: str | None = None) -> int:
    """Insert a result into ``parity_checks``; returns the row id."""
    from ..store.db import dumps, utcnow

    payload = result.to_dict()
    row = {"model_id": model_id, "kind": result.kind, "reference": result.reference,
           "candidate": result.candidate, "n_prompts": result.n_prompts,
           "token_agreement": result.token_agreement, "exact_matches": result.exact_matches,
           "chat_template_ok": (None if result.chat_template_ok is None
                                else int(result.chat_template_ok)),
           "passed": int(result.passed),
           "details": dumps({k: payload[k]
                             for k in ("prompts", "details", "threshold", "advisory", "verdict",
                                       "seconds", "errors", "agreement", "forced_agreement")}),
           "created_at": utcnow()}
    with store.db.conn:
        cursor = store.db.execute(
            f"INSERT INTO parity_checks ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()))
    return int(cursor.lastrowid)


def stored_results(store, model_id: str | None = None) -> list[dict]:
    """Rows of ``parity_checks`` (newest first), optionally for one model; each with its
    ``verdict``, ``threshold`` and ``advisory`` read from the stored details."""
    from ..store.db import loads

    where, params = ("WHERE model_id = ?", [model_id]) if model_id else ("", [])
    rows = store.rows(f"SELECT * FROM parity_checks {where} ORDER BY id DESC", params)
    for row in rows:
        details = loads(row.get("details")) or {}
        row["threshold"] = details.get("threshold")
        row["advisory"] = bool(details.get("advisory"))
        row["verdict"] = details.get("verdict") or ("passed" if row["passed"] else "failed")
        row["forced_agreement"] = details.get("forced_agreement")
        row["agreement"] = details.get("agreement", row["token_agreement"])
    return rows
