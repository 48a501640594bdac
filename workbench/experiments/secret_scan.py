"""Secret detection shared by the output scorer and training-data redaction.

One function, :func:`scan_secrets`, returns every secret in a text with its kind and span; the
spans cover the **whole** secret (a PEM block from BEGIN to END, a whole JWT with its signature,
the whole key value), so redaction removes it entirely.

Most kinds come from the maintained ``detect-secrets`` plugins (their compiled patterns, run
directly: no per-call plugin set-up, settings or network verification). The plugins chosen are the
precise, vendor-shaped ones; the entropy and keyword plugins, the public-IP plugin, Artifactory's
password pattern and Discord's are left out because they flag ordinary incident text (git SHAs,
UUIDs, request ids, IPs, dotted host names).

Kept as regexes here, because detect-secrets lacks them or matches only part of the secret:

- ``private_key``: the whole PEM block (the plugin matches only the ``BEGIN ... PRIVATE KEY``
  header); a block cut short without its END line is removed through its last base64 line;
  PuTTY key files through their ``Private-MAC`` line; PKCS#8 ``ENCRYPTED PRIVATE KEY``;
- ``github_token``: fine-grained ``github_pat_`` tokens (the plugin knows ``ghp_``/``gho_``/...);
- ``openai_key``: ``sk-``, ``sk-proj-``, ``sk-ant-`` style keys (the plugin needs the legacy
  ``T3BlbkFJ`` marker);
- ``aws_secret_key``: an unquoted ``AWS_SECRET_ACCESS_KEY=...`` or ``"SecretAccessKey": "..."``
  (the plugin needs an ``aws...key`` name and a quoted value);
- ``slack_token``: ``xox?-`` tokens without the numeric groups the plugin requires, ``xapp-``;
- ``jwt``: the plugin's pattern stops before the signature; the span is extended over it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

#: detect-secrets plugin class name -> the kind reported (others: snake_case of secret_type)
_KIND_BY_PLUGIN = {
    "AWSKeyDetector": "aws_key", "OpenAIDetector": "openai_key",
    "PrivateKeyDetector": "private_key", "GitHubTokenDetector": "github_token",
    "SlackDetector": "slack_token", "JwtTokenDetector": "jwt", "BasicAuthDetector": "basic_auth",
}
_PLUGINS = (
    "aws.AWSKeyDetector", "azure_storage_key.AzureStorageKeyDetector",
    "basic_auth.BasicAuthDetector", "cloudant.CloudantDetector",
    "github_token.GitHubTokenDetector", "gitlab_token.GitLabTokenDetector",
    "ibm_cloud_iam.IbmCloudIamDetector", "ibm_cos_hmac.IbmCosHmacDetector",
    "jwt.JwtTokenDetector", "mailchimp.MailchimpDetector", "npm.NpmDetector",
    "openai.OpenAIDetector", "private_key.PrivateKeyDetector", "pypi_token.PypiTokenDetector",
    "sendgrid.SendGridDetector", "slack.SlackDetector", "softlayer.SoftlayerDetector",
    "square_oauth.SquareOAuthDetector", "stripe.StripeDetector",
    "telegram_token.TelegramBotTokenDetector", "twilio.TwilioKeyDetector",
)

_PEM_NAME = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?"
_PEM_BODY_LINE = r"(?=[A-Za-z0-9+/=]*[0-9+/])[A-Za-z0-9+/=]{8,}"
_NEWLINE = r"[ \t]*(?:\r?\n|\\r?\\n)[ \t]*"  # a real newline or a JSON-escaped one in a log line
_OWN_PATTERNS = (  # (kind, pattern, check of the matched text or None)
    ("private_key", re.compile(
        rf"-----BEGIN {_PEM_NAME}-----.{{0,65536}}?-----END {_PEM_NAME}-----", re.DOTALL), None),
    ("private_key", re.compile(  # no END line: the header and every base64 line after it
        rf"-----BEGIN {_PEM_NAME}-*"
        rf"(?:{_NEWLINE}(?:(?:Proc-Type|DEK-Info|Comment):[^\r\n]*|{_PEM_BODY_LINE}))*"
        rf"(?:[ \t]+{_PEM_BODY_LINE})?"), None),
    ("private_key", re.compile(
        r"PuTTY-User-Key-File-\d+:.{0,16384}?Private-MAC:[ \t]*[0-9A-Fa-f]+", re.DOTALL), None),
    ("github_token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,255}"), None),
    # sk-, sk-proj-, sk-ant-api03-, ...: a digit and a run of 20 letters/digits (not a host name)
    ("openai_key", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),
     lambda s: bool(re.search(r"[0-9]", s) and re.search(r"[A-Za-z0-9]{20}", s))),
    ("aws_secret_key", re.compile(
        r"(?:aws[_-]?secret(?:[_-]?access)?[_-]?key|secret[_-]?access[_-]?key)['\"]?\s*[=:]\s*"
        r"['\"]?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])", re.IGNORECASE), None),
    ("slack_token", re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,}"), None),
    ("slack_token", re.compile(r"\bxapp-\d-[A-Za-z0-9-]{10,}"), None),
)
_GENERIC_KINDS = {"basic_auth"}  # named only when no specific kind covers the same span
_AWS_ACCESS_ID = re.compile(r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}")
_TOKEN_CHAR = re.compile(r"[A-Za-z0-9_-]*")
_JWT_SIGNATURE = re.compile(r"[A-Za-z0-9_\-+/=]*")


@dataclass(frozen=True)
class SecretMatch:
    """One secret in a text: its kind and the span ``text[start:end]`` it covers."""

    kind: str
    start: int
    end: int


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@lru_cache(maxsize=1)
def _detectors() -> tuple:
    """(kind, compiled pattern, validator or None) for every plugin pattern; built once."""
    import importlib

    found = []
    for dotted in _PLUGINS:
        module_name, class_name = dotted.rsplit(".", 1)
        try:
            plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module_name}"),
                             class_name)
        except (ImportError, AttributeError):  # an older/newer detect-secrets without it
            continue
        kind = _KIND_BY_PLUGIN.get(class_name) or _snake(plugin.secret_type)
        validator = getattr(plugin, "is_formally_valid", None)
        for pattern in plugin.denylist:
            found.append((kind, pattern, validator))
    return tuple(found)


def _span(match: re.Match) -> tuple[int, int]:
    """The secret's span in a plugin match: its value group when it has one of useful length
    (``aws...key = "VALUE"``), else the whole match (``ghp_...``, whose group is just 'ghp')."""
    groups = [i for i in range(1, (match.re.groups or 0) + 1) if match.group(i)]
    if groups:
        start, end = min(match.start(i) for i in groups), max(match.end(i) for i in groups)
        if end - start >= 8:
            return start, end
    return match.span()


def _raw_matches(text: str) -> list[SecretMatch]:
    found: list[SecretMatch] = []
    for kind, pattern, validator in _detectors():
        for match in pattern.finditer(text):
            start, end = _span(match)
            if kind == "jwt":
                if validator is not None and not validator(match.group()):
                    continue
                end = _JWT_SIGNATURE.match(text, end).end()
            if kind == "aws_key":
                kind_here = ("aws_access_key" if _AWS_ACCESS_ID.fullmatch(text[start:end])
                             else "aws_secret_key")
            else:
                kind_here = kind
            found.append(SecretMatch(kind_here, start, end))
    for kind, pattern, check in _OWN_PATTERNS:
        for match in pattern.finditer(text):
            if check is not None and not check(match.group()):
                continue
            start, end = _span(match) if kind == "aws_secret_key" else match.span()
            found.append(SecretMatch(kind, start, end))
    return found


def _extend(text: str, match: SecretMatch) -> SecretMatch:
    """Grow a token's span over the token characters right after it (a longer key than the
    pattern's fixed length is still removed whole)."""
    if match.kind == "private_key" or match.end == match.start:
        return match
    if not re.match(r"[A-Za-z0-9_-]", text[match.end - 1]):
        return match
    end = _TOKEN_CHAR.match(text, match.end).end()
    return SecretMatch(match.kind, match.start, end) if end != match.end else match


def scan_secrets(text: str | None) -> list[SecretMatch]:
    """Every secret in ``text``, in order, overlapping finds merged into one span (named by the
    longest specific find: a ``ghp_`` token in a URL is a github_token, not basic_auth); the
    spans cover each whole secret."""
    if not text:
        return []
    raw = sorted((_extend(text, m) for m in _raw_matches(text)),
                 key=lambda m: (m.start, -(m.end - m.start)))
    merged: list[SecretMatch] = []
    best: list[tuple[bool, int]] = []  # (specific kind, length) of the find naming each span
    for match in raw:
        rank = (match.kind not in _GENERIC_KINDS, match.end - match.start)
        if merged and match.start < merged[-1].end:
            last = merged[-1]
            kind = match.kind if rank > best[-1] else last.kind
            best[-1] = max(best[-1], rank)
            merged[-1] = SecretMatch(kind, last.start, max(last.end, match.end))
        else:
            merged.append(match)
            best.append(rank)
    return merged


def secret_kinds(text: str | None) -> list[str]:
    """Kinds of secret in ``text``, each once, in order of first appearance."""
    return list(dict.fromkeys(m.kind for m in scan_secrets(text)))


def redact_secrets(text: str | None) -> str:
    """``text`` with every whole secret replaced by ``[REDACTED kind]``."""
    if not text:
        return text or ""
    parts, position = [], 0
    for match in scan_secrets(text):
        parts += [text[position:match.start], f"[REDACTED {match.kind}]"]
        position = match.end
    return "".join(parts) + text[position:]
