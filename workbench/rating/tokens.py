"""Per-rater links for browser rating: an unguessable token that fixes one rater and one experiment.

Only the SHA-256 of a token is stored, so the database cannot be used to rebuild a link; a new
link for the same rater and experiment withdraws the old one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from ..store import NotFound, Store, utcnow
from .sessions import RatingError

TOKEN_BYTES = 32  # 256 bits: ~43 URL-safe characters
MAX_RATER_LENGTH = 80


@dataclass(frozen=True)
class Grant:
    """What a valid token allows: rating one experiment as one rater."""

    experiment_id: int
    rater: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_rater_name(rater: str) -> str:
    """The stripped rater name, or RatingError when it is empty, too long or not printable."""
    name = (rater or "").strip()
    if not name:
        raise RatingError("a rater name is required")
    if len(name) > MAX_RATER_LENGTH:
        raise RatingError(f"a rater name has at most {MAX_RATER_LENGTH} characters")
    if not name.isprintable():
        raise RatingError(f"a rater name must be printable text, not {name!r}")
    return name


def issue_token(store: Store, exp_id: int, rater: str) -> str:
    """A new link token for ``rater`` on experiment ``exp_id``; their older links stop working."""
    rater = check_rater_name(rater)
    exp = store.get_experiment(exp_id)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    with store.db.atomic():
        store.db.execute("UPDATE rating_tokens SET revoked_at = ? WHERE experiment_id = ? "
                         "AND rater = ? AND revoked_at IS NULL", [now, exp.id, rater])
        store.db["rating_tokens"].insert({"token_hash": token_hash(token), "experiment_id": exp.id,
                                          "rater": rater, "created_at": now})
    return token


def resolve_token(store: Store, token: str | None, *, touch: bool = False) -> Grant | None:
    """The grant of a valid, unrevoked token; None for anything else (missing, wrong, withdrawn).

    ``touch`` records the time of use (the server does, on each browser connection).
    """
    if not token or len(token) > 200:
        return None
    found = store.rows("SELECT id, experiment_id, rater FROM rating_tokens WHERE token_hash = ? "
                       "AND revoked_at IS NULL", [token_hash(token)])
    if not found:
        return None
    try:
        store.get_experiment(found[0]["experiment_id"])
    except NotFound:
        return None
    if touch:
        with store.db.atomic():
            store.db.execute("UPDATE rating_tokens SET last_used_at = ? WHERE id = ?",
                             [utcnow(), found[0]["id"]])
    return Grant(found[0]["experiment_id"], found[0]["rater"])


def revoke_tokens(store: Store, exp_id: int, rater: str | None = None) -> int:
    """Withdraw the links of an experiment (or of one rater on it); return how many."""
    sql = "UPDATE rating_tokens SET revoked_at = ? WHERE experiment_id = ? AND revoked_at IS NULL"
    params: list = [utcnow(), exp_id]
    if rater is not None:
        sql += " AND rater = ?"
        params.append(rater.strip())
    with store.db.atomic():
        return store.db.execute(sql, params).rowcount


def active_links(store: Store, exp_id: int) -> list[dict]:
    """Raters with a valid link on the experiment: rater, created_at, last_used_at."""
    return store.rows("SELECT rater, created_at, last_used_at FROM rating_tokens WHERE "
                      "experiment_id = ? AND revoked_at IS NULL ORDER BY rater", [exp_id])
