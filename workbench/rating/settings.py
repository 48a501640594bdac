"""Per-experiment rating settings: what raters are shown, which items they are spared.

- ``show_reference``: show the dataset's reference answer under the incident (default: hidden,
  so raters judge the two answers on their own merits);
- ``exclude_leaks``: leave out of every session the items where an answer may reveal the model
  (``identity_leaks``); default: included, the operator is told about them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store import Store, utcnow


@dataclass(frozen=True)
class RatingSettings:
    show_reference: bool = False
    exclude_leaks: bool = False


def get_settings(store: Store, exp_id: int) -> RatingSettings:
    """The experiment's rating settings (the defaults when none were set)."""
    found = store.rows("SELECT show_reference, exclude_leaks FROM rating_settings "
                       "WHERE experiment_id = ?", [exp_id])
    if not found:
        return RatingSettings()
    return RatingSettings(bool(found[0]["show_reference"]), bool(found[0]["exclude_leaks"]))


def update_settings(store: Store, exp_id: int, *, show_reference: bool | None = None,
                    exclude_leaks: bool | None = None) -> RatingSettings:
    """Change some settings of an experiment (None keeps a setting) and return them all."""
    store.get_experiment(exp_id)  # NotFound for an unknown experiment
    with store.db.atomic():
        now = get_settings(store, exp_id)
        new = RatingSettings(now.show_reference if show_reference is None else bool(show_reference),
                             now.exclude_leaks if exclude_leaks is None else bool(exclude_leaks))
        store.db.execute(
            """INSERT INTO rating_settings
                   (experiment_id, show_reference, exclude_leaks, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (experiment_id) DO UPDATE SET
               show_reference = excluded.show_reference, exclude_leaks = excluded.exclude_leaks,
               updated_at = excluded.updated_at""",
            [exp_id, int(new.show_reference), int(new.exclude_leaks), utcnow()])
    return new
