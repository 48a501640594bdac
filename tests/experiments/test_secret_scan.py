"""Secret detection (detect-secrets plugins plus the kinds they lack): kinds, whole spans, speed,
and no false positive on ordinary incident text. All values are fake, with real shapes."""

import base64
import json
import time

import pytest

from workbench.experiments.secret_scan import redact_secrets, scan_secrets, secret_kinds


def _b64(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


JWT = (_b64({"alg": "HS256", "typ": "JWT"}) + "." + _b64({"sub": "1234567890", "name": "Ana"})
       + ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
PEM_BODY = ["MIIEpAIBAAKCAQEAzFAKEKEYDONOTUSEEXAMPLE0q3vT9bXk2LmN8pQ4rS7uV1wY",
            "7Hc2Qm9Zt4Lp1Xs8Vb3Nk6Rj0Wf5Gd2Ty7Ue4Io1Pa8Sd3Fg6Hj9Kl2Zx5Cv8Bn1M",
            "Q2w3E4r5T6y7U8i9O0pAaSsDdFfGgHhJjKkLl=="]
PEM = ("-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_BODY)
       + "\n-----END RSA PRIVATE KEY-----")
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GITHUB_PAT = ("github_pat_11ABCDEFG0123456789abc_" + "defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"
              "UVWXYZ0123456789")

CASES = [  # (text, kind, the secret that must vanish whole)
    ("access_key=AKIAI44QH8DHBEXAMPLE in the log", "aws_access_key", "AKIAI44QH8DHBEXAMPLE"),
    (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n+ terraform apply", "aws_secret_key", AWS_SECRET),
    (f'{{"SecretAccessKey": "{AWS_SECRET}", "Expiration": "2025-11-12"}}', "aws_secret_key",
     AWS_SECRET),
    (f's3 = boto3.client("s3", aws_secret_access_key="{AWS_SECRET}")', "aws_secret_key",
     AWS_SECRET),
    ('"Authorization": "Bearer sk-FAKEq8Wm2Zr5Tx9Lb3Nc7Vd1Hf6Jg4Kp0Ys2EXAMPLEkey00"', "openai_key",
     "sk-FAKEq8Wm2Zr5Tx9Lb3Nc7Vd1Hf6Jg4Kp0Ys2EXAMPLEkey00"),
    ("OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_Ab7cDe0fGh3-iJk6lMn9oPq2rSt5 set",
     "openai_key", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_Ab7cDe0fGh3-iJk6lMn9oPq2rSt5"),
    ("git clone https://x:ghp_FAKE1234567890abcdefghijklmnopqrstuv@github.example/o/r",
     "github_token", "ghp_FAKE1234567890abcdefghijklmnopqrstuv"),
    (f"GH_TOKEN={GITHUB_PAT} exported", "github_token", GITHUB_PAT),
    ("SLACK_BOT_TOKEN=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack_token",
     "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    (f"Authorization: Bearer {JWT} (expired)", "jwt", JWT),
    (f"the engineer pasted the key:\n{PEM}\nand the error is", "private_key", PEM),
    ("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", "sendgrid_api_key",
     "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"),
]


@pytest.mark.parametrize("text,kind,secret", CASES, ids=[c[1] + str(i) for i, c in enumerate(CASES)])
def test_each_kind_is_found_and_removed_whole(text, kind, secret):
    assert secret_kinds(text) == [kind]
    (match,) = scan_secrets(text)
    assert text[match.start:match.end].endswith(secret[-12:])
    redacted = redact_secrets(text)
    assert f"[REDACTED {kind}]" in redacted
    for piece in (secret[:10], secret[-10:], secret[len(secret) // 2:][:10]):
        assert piece not in redacted, (piece, redacted)


def test_a_multi_line_pem_block_goes_from_begin_to_end():
    text = f"before\n{PEM}\nafter"
    assert redact_secrets(text) == "before\n[REDACTED private_key]\nafter"
    escaped = 'key="' + PEM.replace("\n", "\\n") + '" rest'  # as it appears in a JSON log line
    assert redact_secrets(escaped) == 'key="[REDACTED private_key]" rest'
    pkcs8 = PEM.replace("RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
    assert redact_secrets(pkcs8) == "[REDACTED private_key]"


def test_a_pem_block_cut_short_is_removed_through_its_last_base64_line():
    text = ("To check the file an engineer pasted its head:\n-----BEGIN RSA PRIVATE KEY-----\n"
            f"{PEM_BODY[0]}\n{PEM_BODY[1]}\n(truncated)")
    redacted = redact_secrets(text)
    assert redacted == "To check the file an engineer pasted its head:\n[REDACTED private_key]\n(truncated)"


def test_several_secrets_in_one_text_are_each_removed():
    text = f"id AKIAIOSFODNN7EXAMPLE secret AWS_SECRET_ACCESS_KEY={AWS_SECRET} token {JWT}"
    assert secret_kinds(text) == ["aws_access_key", "aws_secret_key", "jwt"]
    assert redact_secrets(text) == ("id [REDACTED aws_access_key] secret AWS_SECRET_ACCESS_KEY="
                                    "[REDACTED aws_secret_key] token [REDACTED jwt]")


BENIGN = """\
2025-11-04T09:12:44.318Z ERROR checkout-api request_id=req_7f3a91c2 trace_id=0af7651916cd43dd8448eb211c80319c
deploy 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39 (v2.31) rolled out to pod checkout-api-7d9f8b6c5d-x2kqz
Lock Info: ID 4c1e9a2d-77b0-4f0e-9d1a-2b5c8e6f0a13, image sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
host sk-prod-eu-west-1-cache-01.internal.example at 10.0.3.17; AKIA is the prefix of AWS key ids; rotate sk-1
token expired; password reset requested; see https://wiki.example/runbooks/db-failover#step-3
"""


def test_no_false_positive_on_ordinary_incident_text():
    assert scan_secrets(BENIGN) == []
    assert redact_secrets(BENIGN) == BENIGN
    assert secret_kinds("") == [] and redact_secrets("") == ""


def test_a_scan_of_a_2kb_output_takes_well_under_10_ms():
    text = (BENIGN + f"leak AKIAIOSFODNN7EXAMPLE {JWT}\n") * 8
    text = text[:2048]
    scan_secrets(text)  # the plugins are imported and collected once, here
    n = 50
    start = time.perf_counter()
    for _ in range(n):
        scan_secrets(text)
    per_call_ms = (time.perf_counter() - start) / n * 1000
    assert per_call_ms < 5, f"{per_call_ms:.2f} ms per 2 KB scan"


def test_hostile_input_stays_linear():
    start = time.perf_counter()
    for text in ("sk-" + "a-" * 100_000, "-----BEGIN RSA PRIVATE KEY-----\n" + "A1" * 100_000,
                 "eyJ" + "a" * 200_000):
        scan_secrets(text)
    assert time.perf_counter() - start < 3
