"""How close a quantized export must stay to its F16 original, per quantization type.

Agreement is the export parity check's token-weighted common prefix of greedy outputs (F16 vs
quantized, ``parity.check_gguf_parity``). Measured on the bundled SmolLM2-135M with
``bench/parity_thresholds.py`` (16 prompts, 32 new tokens, 2026-12-02): F16 1.00 (16/16 exact),
q8_0 0.62 (8/16 exact; 0.72 on the export's 4 default prompts), q5_k_m 0.05 and q4_k_m 0.10
(0/16 exact). On this model 166 of its 272 tensors have 576-wide rows, not a multiple of 256,
so llama.cpp quantizes them with the fallback q5_1 / q5_0 instead of a k-quant, and greedy
outputs part within the first tokens. So q8_0 (and F16) gate the export: below the threshold
the parity step fails. The k-quants are **advisory**: below their threshold is a warning shown
with the result and the export succeeds; models with 256-aligned rows agree far more.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParityGate:
    """The agreement a quantization must reach; ``advisory`` gates warn instead of failing."""

    qtype: str
    threshold: float
    advisory: bool
    normal: str  # what the bench measured on the bundled model, for messages and docs

    def verdict(self, agreement: float | None) -> str:
        """'passed', 'failed' or 'advisory' (below an advisory threshold) for an agreement."""
        if agreement is not None and agreement >= self.threshold:
            return "passed"
        return "advisory" if self.advisory else "failed"


GATES = {
    "f16": ParityGate("f16", 0.99, False, "1.00 (16/16 exact)"),
    "q8_0": ParityGate("q8_0", 0.50, False, "0.62 (8/16 exact)"),
    "q5_k_m": ParityGate("q5_k_m", 0.30, True, "0.05 (0/16 exact; fallback q5_1 tensors)"),
    "q4_k_m": ParityGate("q4_k_m", 0.30, True, "0.10 (0/16 exact; fallback q5_0 tensors)"),
}
DEFAULT_GATE = ParityGate("other", 0.25, True, "not measured")


def gate_for(qtype: str) -> ParityGate:
    """The gate for a quantization type (advisory with a low floor when not measured)."""
    return GATES.get(qtype.lower(), ParityGate(qtype.lower(), DEFAULT_GATE.threshold, True,
                                               DEFAULT_GATE.normal))
