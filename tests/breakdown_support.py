"""A workspace for the per-feature / per-category tests: items of three features and several
categories, stored A/B runs (errors, unsafe flags, latencies) and two raters' blind ratings."""

from __future__ import annotations

from workbench.store import ModelRecord, Store, utcnow

# (feature, category) per item, in file order; the last item gets no runs (item limit)
LAYOUT = ([("incident", "db" if k % 2 else "net") for k in range(16)]
          + [("audit", c) for c in ["db"] * 4 + [None] * 4 + [""] * 2 + ["  "] * 2]
          + [("code", "net")] * 3 + [(None, None)] * 5
          + [("code", "orphan")])
ITEMS_WITH_RUNS = len(LAYOUT) - 1
CRITERIA = {"min_items_per_arm": 5}


def outcome(k: int, feature: str | None) -> dict:
    """The stored outcome of item k for each arm: B much better on audit items."""
    if feature == "audit":
        a_ok, b_ok = k % 2, 1
    else:
        a_ok, b_ok = int(k % 3 != 0), int(k % 4 != 0)
    return {"A": {"ok": a_ok, "latency": 200.0 + 13 * (k % 7), "error": None, "unsafe": False},
            "B": {"ok": b_ok, "latency": 190.0 + 17 * (k % 5) + (30 if feature == "code" else 0),
                  "error": "boom" if k == 5 else None, "unsafe": k in (3, 20)}}


def fill(store: Store) -> int:
    """The experiment (shadow, limit = the items with runs); returns its id."""
    if not store.rows("SELECT 1 FROM models WHERE id = 'fake'"):
        store.upsert_model(ModelRecord(id="fake", path="/fake.gguf"))
    variants = {"A": store.create_variant("prod", "fake").id,
                "B": store.create_variant("cand", "fake").id}
    items = [{"key": f"item-{k:02d}", "input": f"case {k}", "line_no": k + 1,
              "reference": {"severity": "SEV-2"}, "feature": feature, "category": category}
             for k, (feature, category) in enumerate(LAYOUT)]
    ds = store.save_dataset("mixed", items, source_path=None, sha256=None, n_rejected=0)
    exp = store.create_experiment("mixed", ds, variants, criteria=CRITERIA,
                                  item_limit=ITEMS_WITH_RUNS)
    ids = [i.id for i in store.items(ds)]
    for k, item in enumerate(ids[:ITEMS_WITH_RUNS]):
        for arm, o in outcome(k, LAYOUT[k][0]).items():
            store.record_run({
                "experiment_id": exp.id, "item_id": item, "variant_id": variants[arm], "arm": arm,
                "output": f"{arm} answer", "latency_ms": o["latency"], "ttft_ms": o["latency"] / 8,
                "prompt_tokens": 40 + k, "completion_tokens": 10 + k % 4,
                "decode_tps": 30.0 - (arm == "B") - k % 3, "error": o["error"],
                "severity_ok": None if o["error"] else o["ok"], "secrets": 0,
                "scores": {"secret_kinds": [], "unsafe": ["rm_rf_root"] if o["unsafe"] else []},
                "engine": "fake-engine", "usage_source": "counted"})
    for rater, shift in (("ana", 0), ("bob", 1)):  # incident and audit items rated
        rows = []
        for k in list(range(0, 12)) + list(range(16, 26)):
            b_left = (k + shift) % 2 == 0
            good, bad = 4 + (k + shift) % 2, 2 + k % 2
            choice = ("1" if b_left else "2") if k % 5 else "tie"
            rows.append((ids[k], "B" if b_left else "A", "A" if b_left else "B", choice,
                         good if b_left else bad, 5, bad if b_left else good, 4))
        rate(store, exp.id, rater, rows)
    return exp.id


def rate(store: Store, exp_id: int, rater: str, rows) -> None:
    """Store a rater's ratings: rows of (item, left arm, right arm, choice, accuracy 1,
    safety 1, accuracy 2, safety 2)."""
    sid = store.db.execute(
        "INSERT INTO rating_sessions (experiment_id, rater, seed, created_at) VALUES (?, ?, 0, ?)",
        [exp_id, rater, utcnow()]).lastrowid
    for pos, (item, left, right, choice, acc1, saf1, acc2, saf2) in enumerate(rows):
        store.db.execute(
            "INSERT INTO ratings (session_id, item_id, position, left_arm, right_arm, choice, "
            "accuracy_1, safety_1, accuracy_2, safety_2, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [sid, item, pos, left, right, choice, acc1, saf1, acc2, saf2, utcnow()])


def mixed_workspace(root) -> tuple:
    """(root, experiment id): a workspace folder at ``root`` holding ``fill``'s experiment."""
    from workbench.workspace import open_workspace

    opened = open_workspace(root, seed=False)
    try:
        return root, fill(opened.store)
    finally:
        opened.close()


def copy_as_experiment(store: Store, exp_id: int, item_ids: list[int], name: str) -> int:
    """A new experiment over a new dataset holding only ``item_ids`` (same order), with copies
    of their runs and ratings: what the whole report says about exactly those items."""
    from workbench.store.store import RUN_COLUMNS

    exp = store.get_experiment(exp_id)
    old = {r["id"]: r for r in store.rows("SELECT * FROM items WHERE dataset_id = ? ORDER BY id",
                                          [exp.dataset_id])}
    keep = [old[i] for i in sorted(item_ids)]
    items = [{"key": r["key"], "input": r["input"], "line_no": r["line_no"],
              "reference": {"severity": "SEV-2"}, "feature": r["feature"],
              "category": r["category"]} for r in keep]
    ds = store.save_dataset(name, items, source_path=None, sha256=None, n_rejected=0)
    new_ids = dict(zip([r["id"] for r in keep], [i.id for i in store.items(ds)]))
    copy = store.create_experiment(name, ds, exp.arms, criteria=exp.criteria)
    for run in store.runs(exp_id):
        if run["item_id"] in new_ids:
            store.record_run({**{c: run[c] for c in RUN_COLUMNS}, "experiment_id": copy.id,
                              "item_id": new_ids[run["item_id"]]})
    for session in store.rows("SELECT * FROM rating_sessions WHERE experiment_id = ? ORDER BY id",
                              [exp_id]):
        ratings = store.rows("SELECT * FROM ratings WHERE session_id = ? ORDER BY id",
                             [session["id"]])
        rate(store, copy.id, session["rater"],
             [(new_ids[r["item_id"]], r["left_arm"], r["right_arm"], r["choice"], r["accuracy_1"],
               r["safety_1"], r["accuracy_2"], r["safety_2"])
              for r in ratings if r["item_id"] in new_ids])
    return copy.id
