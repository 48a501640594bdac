"""Helper process for test_environment: write through Store methods that read then write.

Usage: python concurrent_writer.py DB TAG N GO_FILE. Waits for GO_FILE, then runs N rounds of
create_variant + save_dataset + upsert_model + a rating; prints {"done": k, "errors": [...]}.
"""

import json
import sys
import time
from pathlib import Path

from workbench.rating.sessions import open_session, record_rating
from workbench.store import ModelRecord, Store

db, tag, rounds, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
store = Store(db)
exp_id = store.rows("SELECT id FROM experiments ORDER BY id LIMIT 1")[0]["id"]
items = [r["item_id"] for r in store.rows(
    "SELECT DISTINCT item_id FROM runs WHERE experiment_id = ? ORDER BY item_id", [exp_id])]
while not go.exists():
    time.sleep(0.001)
done, errors = 0, []
for i in range(rounds):
    steps = (
        lambda: store.create_variant(f"v-{tag}-{i}", "fake", system_prompt=tag),
        lambda: store.save_dataset(f"d-{tag}-{i % 3}",  # long write transactions
                                   [{"key": f"k{j}", "input": "x" * 200} for j in range(300)],
                                   source_path=None, sha256=None, n_rejected=0),
        lambda: store.upsert_model(ModelRecord(id=f"m-{tag}", path=f"/{tag}-{i}.gguf")),
        lambda: record_rating(store, open_session(store, exp_id, f"r-{tag}-{i}", seed=i),
                              items[i % len(items)], "1"),
    )
    for step in steps:
        try:
            step()
            done += 1
        except Exception as exc:  # noqa: BLE001 - counted and reported to the test
            errors.append(f"{type(exc).__name__}: {exc}")
print(json.dumps({"done": done, "errors": errors}))
