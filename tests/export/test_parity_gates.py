"""Parity gates per quantization type: a gating type below its threshold fails, an advisory
one is a warning; the gate applies to teacher-forced agreement when it was measured; the
verdict is stored and read back; a real check can fail."""

from __future__ import annotations

import pytest

from workbench.export.parity import ParityResult, PromptParity, store_result, stored_results
from workbench.export.parity_gates import GATES, gate_for


def _result(agreement_tokens: int, *, qtype: str, forced: int | None = None) -> ParityResult:
    gate = gate_for(qtype)
    prompt = PromptParity("p", "a", "b", list(range(10)), list(range(agreement_tokens)) +
                          [99] * (10 - agreement_tokens), agreement_tokens,
                          None if agreement_tokens == 10 else agreement_tokens,
                          forced_matches=forced, forced_total=None if forced is None else 10)
    return ParityResult("gguf_vs_gguf", "ref", "cand", prompts=[prompt],
                        threshold=gate.threshold, advisory=gate.advisory)


def test_every_measured_type_has_a_sane_gate():
    assert {"q8_0", "q5_k_m", "q4_k_m"} <= set(GATES)
    assert GATES["f16"].threshold >= GATES["q8_0"].threshold >= GATES["q5_k_m"].threshold
    assert not any(gate.advisory for gate in GATES.values())  # all measured: all gate
    assert gate_for("Q8_0") == GATES["q8_0"]
    assert gate_for("iq2_xs").advisory  # not measured: advisory, never a silent pass


@pytest.mark.parametrize("qtype", ["q8_0", "q5_k_m", "q4_k_m", "iq2_xs"])
def test_verdict_follows_the_gate(qtype):
    gate = gate_for(qtype)
    above = _result(10, qtype=qtype)
    assert above.passed and above.verdict == "passed"
    below = _result(int(gate.threshold * 10) - 1, qtype=qtype)
    assert not below.passed
    assert below.verdict == ("advisory" if gate.advisory else "failed")
    assert below.to_dict()["verdict"] == below.verdict


def test_the_gate_reads_teacher_forced_agreement_when_measured():
    # greedy answers part at the first token, yet 9 of 10 forced positions agree: passes
    parted = _result(0, qtype="q8_0", forced=9)
    assert parted.token_agreement == 0.0 and parted.forced_agreement == 0.9
    assert parted.agreement == 0.9 and parted.passed
    assert not _result(10, qtype="q8_0", forced=5).passed  # equal greedy text, forced says no
    assert _result(10, qtype="q8_0").agreement == 1.0  # not measured: the greedy figure


def test_verdict_is_stored_and_read_back(tmp_path):
    from workbench.store import Store

    with Store(tmp_path / "wb.db") as store:
        store_result(store, _result(1, qtype="q8_0", forced=3))
        store_result(store, _result(1, qtype="iq2_xs"))
        rows = stored_results(store)
    assert [r["verdict"] for r in rows] == ["advisory", "failed"]
    assert rows[1]["threshold"] == GATES["q8_0"].threshold and rows[0]["advisory"]
    assert rows[1]["forced_agreement"] == rows[1]["agreement"] == pytest.approx(0.3)
    assert rows[0]["forced_agreement"] is None and rows[0]["agreement"] == pytest.approx(0.1)


def test_a_real_check_fails_the_q8_0_gate(tmp_path, bundled_path):
    """The bundled model against itself plus a strong random LoRA: outputs part at once."""
    pytest.importorskip("peft")
    from workbench.export.adapter_gguf import write_adapter_gguf, write_random_adapter
    from workbench.export.parity import check_gguf_parity

    adapter = tmp_path / "noise.lora.gguf"
    write_adapter_gguf(write_random_adapter(bundled_path, tmp_path / "peft", std=0.5), adapter,
                       base_gguf=bundled_path)
    gate = gate_for("q8_0")
    result = check_gguf_parity(bundled_path, bundled_path, ["What is the capital of France?",
                                                            "Is a failed backup an incident?"],
                               candidate_lora=adapter, threshold=gate.threshold,
                               max_new_tokens=12, n_threads=2)
    result.advisory = gate.advisory
    assert result.token_agreement < gate.threshold and result.verdict == "failed"
    assert result.forced_agreement < gate.threshold  # the noise shows in forced agreement too
