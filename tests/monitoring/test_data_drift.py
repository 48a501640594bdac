"""Data drift: the permutation test, the category chi-square, and a real check on SmolLM2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import chi2

from support import REPO, write_jsonl
from workbench.cli import main
from workbench.monitoring.data_drift import (category_shift, centroid_distance,
                                             judge_data_drift, permutation_test)


def test_centroid_distance_is_the_cosine_distance_of_the_means():
    a = np.array([[1.0, 0.0], [1.0, 0.2]])
    b = np.array([[0.0, 1.0], [0.2, 1.0]])
    ca, cb = a.mean(0), b.mean(0)
    expected = 1 - ca @ cb / np.linalg.norm(ca) / np.linalg.norm(cb)
    assert centroid_distance(a, b) == pytest.approx(expected)
    with pytest.raises(ValueError):
        centroid_distance(np.zeros((2, 2)), b)


def test_permutation_test_tells_a_shift_from_noise_and_is_seeded():
    rng = np.random.default_rng(3)
    common = np.full(16, 5.0)  # a large shared component, like LLM embeddings
    ref = common + rng.normal(0, 1, (20, 16))
    same = common + rng.normal(0, 1, (20, 16))
    shifted = common + rng.normal(0, 1, (20, 16)) + np.r_[np.full(8, 2.0), np.full(8, -2.0)]
    d_same, p_same, null = permutation_test(ref, same, n_permutations=199, seed=1)
    d_shift, p_shift, _ = permutation_test(ref, shifted, n_permutations=199, seed=1)
    assert p_shift == pytest.approx(1 / 200)  # none of the shuffles is as far: the +1 bound
    assert p_same > 0.05 and d_shift > d_same
    assert p_same == pytest.approx((1 + np.sum(null >= d_same - 1e-12)) / 200)
    assert permutation_test(ref, same, n_permutations=199, seed=1)[1] == p_same
    result = judge_data_drift(ref, shifted, threshold=0.01, n_permutations=199)
    assert result.drifted and result.centre == "none"
    assert not judge_data_drift(ref, shifted, threshold=0.99, n_permutations=199).drifted
    assert not judge_data_drift(ref, same, threshold=0.0, n_permutations=199).drifted


def test_category_chi_square_on_constructed_counts():
    ref = ["db"] * 30 + ["network"] * 10
    new = ["db"] * 10 + ["network"] * 20 + ["disk"] * 10  # "disk" is missing in the reference
    out = category_shift(ref, new)
    table = np.array([[30, 10, 0], [10, 20, 10]])[:, [0, 2, 1]]  # sorted: db, disk, network
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    statistic = ((table - expected) ** 2 / expected).sum()
    assert out["categories"] == ["db", "disk", "network"]
    assert out["statistic"] == pytest.approx(statistic) and out["dof"] == 2
    assert out["p_value"] == pytest.approx(chi2.sf(statistic, 2)) and out["shifted"]
    assert out["only_in_recent"] == ["disk"] and out["only_in_reference"] == []
    alike = category_shift(["a"] * 20 + ["b"] * 20, ["a"] * 19 + ["b"] * 21)
    assert not alike["shifted"] and alike["p_value"] > 0.5
    one = category_shift(["a", "a"], ["a", None])  # None counts as "(none)"
    assert one["categories"] == ["(none)", "a"]
    single = category_shift(["a"] * 5, ["a"] * 3)
    assert single["p_value"] == 1.0 and not single["shifted"] and single["notes"]


def _dataset(path, source, rows):
    lines = [json.loads(line) for line in (REPO / "datasets" / source).read_text().splitlines()
             if line.strip()]
    return write_jsonl(path, [lines[k] for k in rows])


def test_data_drift_on_the_real_model(ws, capsys):
    home = ws.workspace.root
    files = {"ref": _dataset(home / "ref.jsonl", "devops_incidents.jsonl", range(0, 16, 2)),
             "resample": _dataset(home / "resample.jsonl", "devops_incidents.jsonl",
                                  range(1, 16, 2)),
             "shifted": _dataset(home / "shifted.jsonl", "emergency_response.jsonl", range(8))}
    for path in files.values():
        assert main(["datasets", "import", str(path), "--workspace", str(home)]) == 0
    capsys.readouterr()

    def check(recent):
        code = main(["drift", "data", "--reference", "ref", "--recent", recent, "--max-tokens",
                     "48", "--permutations", "499", "--json", "--workspace", str(home)])
        out, err = capsys.readouterr()
        assert code == 0, err
        return json.loads(out)

    same = check("resample")
    assert not same["drifted"] and same["distance"] < 0.25
    shifted = check("shifted")
    assert shifted["drifted"] and shifted["distance"] > 0.25 and shifted["p_value"] < 0.05
    assert shifted["alert"]["severity"] == "warning" and shifted["target"] == "dataset:shifted"
    mix = shifted["categories"]  # no category in common; 8 vs 8 is too few for chi-square
    assert mix["only_in_recent"] and set(mix["only_in_reference"]) | set(mix["only_in_recent"]) \
        == set(mix["categories"]) and mix["dof"] == len(mix["categories"]) - 1
    rows = ws.store.rows("SELECT kind, drifted FROM drift_checks ORDER BY id")
    assert rows == [{"kind": "data", "drifted": 0}, {"kind": "data", "drifted": 1}]
