"""How close a quantized export must stay to its F16 original, per quantization type.

The gated figure is the export parity check's **teacher-forced top-1 agreement** (F16 vs
quantized, ``parity.check_gguf_parity``): the quantized model follows the F16 model's greedy
tokens, and a position counts when that token is also its own first choice. Measured on the
bundled SmolLM2-135M with ``bench/parity_thresholds.py`` (16 prompts, 32 new tokens, 2026-12-02):
F16 1.00, q8_0 0.97, q5_k_m 0.87, q4_k_m 0.90. (The greedy common-prefix agreement, also reported,
is 1.00, 0.62, 0.05 and 0.10: one near tie parts two greedy answers for good, and which ties fall
which way changed between two CPUs of this project's CI, so that figure gates nothing.) On this
model 166 of its 272 tensors have 576-wide rows, not a multiple of 256, so llama.cpp quantizes
them with the fallback q5_1 / q5_0 instead of a k-quant. A broken export (a wrong q/k
permutation, a lost tokenizer) agrees near 0. Types not measured here are **advisory**: below
their floor is a warning shown with the result, and the export succeeds.
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
    "f16": ParityGate("f16", 0.99, False, "1.00 teacher-forced (16/16 exact)"),
    "q8_0": ParityGate("q8_0", 0.90, False, "0.97 teacher-forced (8/16 exact)"),
    "q5_k_m": ParityGate("q5_k_m", 0.75, False, "0.87 teacher-forced (fallback q5_1 tensors)"),
    "q4_k_m": ParityGate("q4_k_m", 0.75, False, "0.90 teacher-forced (fallback q5_0 tensors)"),
}
DEFAULT_GATE = ParityGate("other", 0.5, True, "not measured")


def gate_for(qtype: str) -> ParityGate:
    """The gate for a quantization type (advisory with a low floor when not measured)."""
    return GATES.get(qtype.lower(), ParityGate(qtype.lower(), DEFAULT_GATE.threshold, True,
                                               DEFAULT_GATE.normal))
