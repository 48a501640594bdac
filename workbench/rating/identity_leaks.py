"""Answers that may reveal which model wrote them: flagged to the operator, never to raters.

FastChat's arena discards votes on answers that name their model. Here an answer is flagged
when it names a model family or vendor ("As SmolLM…", "developed by OpenAI"), one of the
experiment's own model ids or names, or introduces itself as an AI built by someone ("I am an
AI developed by…"). A term that the incident itself contains is not counted (an audit log
mentioning Google Cloud is not a leak). The operator lists the flags (``workbench ratings leaks``)
and may leave those items out of every session (``settings.exclude_leaks``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..store import Store

# Families and vendors, matched as whole words. "Meta" only with a capital M (not "metadata").
VENDOR_TERMS = (
    r"OpenAI", r"Chat\s?GPT", r"GPT-?[345](?:\.\d)?o?", r"Anthropic", r"Claude",
    r"(?-i:Meta)(?:\s+AI)?",
    r"Llama\s?\d*(?:\.\d)?", r"LLaMA", r"Qwen\d*(?:\.\d)?", r"Alibaba", r"Gemma\s?\d*", r"Gemini",
    r"Google\s+DeepMind", r"DeepMind", r"Mistral", r"Mixtral", r"DeepSeek", r"SmolLM\d*",
    r"Hugging\s?Face", r"HuggingFace", r"(?-i:Phi)-\d(?:\.\d)?", r"Falcon\s?\d+[bB]?", r"Cohere",
    r"Microsoft", r"Vicuna", r"Zephyr", r"TinyLlama", r"Granite", r"Yi-\d",
)
SELF_INTRODUCTION = re.compile(
    r"\b(?:I\s+am|I'm|as)\s+(?:an?\s+|your\s+)?(?:helpful\s+)?(?:AI|artificial intelligence|"
    r"(?:large\s+)?language model|LLM|assistant|chatbot)\b[^.\n]{0,60}?\b(?:developed|created|"
    r"trained|made|built|designed|released)\s+by\b", re.I)
VENDOR_PATTERN = re.compile(r"(?<![\w-])(?:" + "|".join(VENDOR_TERMS) + r")(?![\w-]|\.\w)", re.I)
EXCERPT = 40


@dataclass(frozen=True)
class Leak:
    """One answer that may reveal its model (arms are for the operator's eyes only)."""

    item_id: int
    item_key: str
    arm: str
    term: str
    excerpt: str


def experiment_terms(store: Store, exp_id: int) -> list[str]:
    """Ids and names of the experiment's models (and endpoint models) worth looking for."""
    rows = store.rows(
        """SELECT m.id AS model_id, m.name AS model_name, v.endpoint_model
           FROM experiment_arms a JOIN variants v ON v.id = a.variant_id
           LEFT JOIN models m ON m.id = v.model_id WHERE a.experiment_id = ?""", [exp_id])
    terms = {value.strip() for row in rows for value in row.values()
             if isinstance(value, str) and len(value.strip()) >= 3}
    return sorted(terms, key=len, reverse=True)


def find_terms(text: str, extra: list[str] = ()) -> list[tuple[str, int]]:
    """(term, position) of every possible identity mention in ``text``."""
    found = [(m.group(0), m.start()) for m in VENDOR_PATTERN.finditer(text)]
    found += [(m.group(0), m.start()) for m in SELF_INTRODUCTION.finditer(text)]
    lowered = text.lower()
    for term in extra:
        for m in re.finditer(r"(?<![\w-])" + re.escape(term.lower()) + r"(?![\w-])", lowered):
            found.append((text[m.start():m.end()], m.start()))
    return sorted(found, key=lambda hit: hit[1])


def find_leaks(store: Store, exp_id: int) -> list[Leak]:
    """Every answer of arms A and B that may reveal its model, by item then arm."""
    extra = experiment_terms(store, exp_id)
    rows = store.rows(
        """SELECT r.item_id, r.arm, r.output, i.key, i.input, i.messages FROM runs r
           JOIN items i ON i.id = r.item_id
           WHERE r.experiment_id = ? AND r.arm IN ('A', 'B') AND r.error IS NULL
           ORDER BY r.item_id, r.arm""", [exp_id])
    leaks = []
    for row in rows:
        output = row["output"] or ""
        prompt = ((row["input"] or "") + " " + (row["messages"] or "")).lower()
        for term, at in find_terms(output, extra):
            if term.lower() in prompt:
                continue
            start = max(0, at - EXCERPT)
            excerpt = ("…" if start else "") + output[start:at + len(term) + EXCERPT] + \
                      ("…" if at + len(term) + EXCERPT < len(output) else "")
            leaks.append(Leak(row["item_id"], row["key"], row["arm"], term,
                              " ".join(excerpt.split())))
            break  # one flag per answer is enough to act on
    return leaks


def leaky_items(store: Store, exp_id: int) -> set[int]:
    """Items where at least one answer may reveal its model."""
    return {leak.item_id for leak in find_leaks(store, exp_id)}
