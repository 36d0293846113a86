"""Webhook signature headers: HMAC (Stripe's t=,v1= scheme, cross-checked with the stripe SDK) and
Ed25519 (kid = RFC 7638 thumbprint, looked up in the verifier's own key set)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import stripe
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from payments.errors import WebhookSignatureError
from payments.webhook_signing import (
    DEFAULT_TOLERANCE_S,
    ED25519_HEADER,
    HMAC_HEADER,
    MAX_HEADER_CHARS,
    MAX_SECRETS,
    MAX_TOLERANCE_S,
    MIN_SECRET_BYTES,
    OutboundSigningKeys,
    ed25519_key_set,
    ed25519_kid,
    find_header,
    outbound_headers,
    sign_ed25519,
    sign_hmac,
    signed_payload,
    verify_ed25519,
    verify_hmac,
)
from signatures.jwk import b64url_encode, parse_b64url

BODY = b'{"data":{"amount_minor":1770000},"id":"evt_1","type":"payment.succeeded"}'
OLD_SECRET = b"whsec_old_0123456789abcdef"
NEW_SECRET = b"whsec_new_fedcba9876543210"
T = 1_700_000_000

# RFC 8037 appendix A.1 (private key) and A.3 (its thumbprint).
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def _rule(exc: pytest.ExceptionInfo[WebhookSignatureError]) -> str:
    return exc.value.rule


def _v1(secret: bytes, body: bytes, t: int) -> str:
    return hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()


# --- HMAC: signing -------------------------------------------------------------------------------


def test_sign_hmac_is_t_then_one_v1_per_secret_in_order() -> None:
    header = sign_hmac(BODY, secrets=[OLD_SECRET, NEW_SECRET], timestamp_s=T)
    assert header == f"t={T},v1={_v1(OLD_SECRET, BODY, T)},v1={_v1(NEW_SECRET, BODY, T)}"


def test_signed_payload_is_timestamp_dot_raw_body() -> None:
    assert signed_payload(b"\x00{}", timestamp_s=42) == b"42.\x00{}"


@pytest.mark.parametrize(
    "secrets",
    [
        [],
        [OLD_SECRET] * (MAX_SECRETS + 1),
        [b"x" * (MIN_SECRET_BYTES - 1)],
    ],
    ids=["none", "too-many", "too-short"],
)
def test_sign_hmac_refuses_bad_secret_lists(secrets: list[bytes]) -> None:
    with pytest.raises(ValueError):
        sign_hmac(BODY, secrets=secrets, timestamp_s=T)


def test_a_bare_bytes_secret_is_refused_not_split_into_bytes() -> None:
    with pytest.raises(ValueError, match="not one secret"):
        sign_hmac(BODY, secrets=OLD_SECRET, timestamp_s=T)  # type: ignore[arg-type]


@pytest.mark.parametrize("timestamp_s", [-1, 10**12])
def test_sign_hmac_refuses_timestamps_it_could_not_verify(timestamp_s: int) -> None:
    with pytest.raises(ValueError):
        sign_hmac(BODY, secrets=[OLD_SECRET], timestamp_s=timestamp_s)


# --- HMAC: verifying -----------------------------------------------------------------------------


def test_verify_hmac_accepts_and_returns_the_timestamp() -> None:
    header = sign_hmac(BODY, secrets=[OLD_SECRET], timestamp_s=T)
    assert verify_hmac(BODY, header, secrets=[OLD_SECRET], now_s=T) == T


@pytest.mark.parametrize("verifier_secrets", [[OLD_SECRET], [NEW_SECRET], [NEW_SECRET, OLD_SECRET]])
def test_rotation_both_sides(verifier_secrets: list[bytes]) -> None:
    header = sign_hmac(BODY, secrets=[OLD_SECRET, NEW_SECRET], timestamp_s=T)
    assert verify_hmac(BODY, header, secrets=verifier_secrets, now_s=T) == T


def test_a_receiver_with_both_secrets_accepts_a_header_signed_with_either() -> None:
    for signer in (OLD_SECRET, NEW_SECRET):
        header = sign_hmac(BODY, secrets=[signer], timestamp_s=T)
        assert verify_hmac(BODY, header, secrets=[OLD_SECRET, NEW_SECRET], now_s=T) == T


@pytest.mark.parametrize("offset_s", [-DEFAULT_TOLERANCE_S, 0, DEFAULT_TOLERANCE_S])
def test_window_edges_are_inside(offset_s: int) -> None:
    header = sign_hmac(BODY, secrets=[OLD_SECRET], timestamp_s=T)
    assert verify_hmac(BODY, header, secrets=[OLD_SECRET], now_s=T + offset_s) == T


@pytest.mark.parametrize(
    "now_s", [T + DEFAULT_TOLERANCE_S + 1, T - DEFAULT_TOLERANCE_S - 1], ids=["stale", "future"]
)
def test_timestamps_outside_the_window_are_refused_both_ways(now_s: int) -> None:
    header = sign_hmac(BODY, secrets=[OLD_SECRET], timestamp_s=T)
    with pytest.raises(WebhookSignatureError) as exc:
        verify_hmac(BODY, header, secrets=[OLD_SECRET], now_s=now_s)
    assert _rule(exc) == "timestamp_out_of_window"


def test_a_custom_tolerance_is_honoured() -> None:
    header = sign_hmac(BODY, secrets=[OLD_SECRET], timestamp_s=T)
    assert verify_hmac(BODY, header, secrets=[OLD_SECRET], now_s=T + 10, tolerance_s=10) == T
    with pytest.raises(WebhookSignatureError):
        verify_hmac(BODY, header, secrets=[OLD_SECRET], now_s=T + 11, tolerance_s=10)


@pytest.mark.parametrize("tolerance_s", [-1, MAX_TOLERANCE_S + 1])
def test_tolerance_outside_its_limits_is_a_programming_error(tolerance_s: int) -> None:
    header = sign_hmac(BODY, secrets=[OLD_SECRET], timestamp_s=T)
    with pytest.raises(ValueError):
        verify_hmac(BODY, header, secrets=[OLD_SECRET], now_s=T, tolerance_s=tolerance_s)


def test_a_tampered_body_is_refused() -> None:
    header = sign_hmac(BODY, secrets=[OLD_SECRET], timestamp_s=T)
    with pytest.raises(WebhookSignatureError) as exc:
        verify_hmac(BODY.replace(b"1770000", b"1770001"), header, secrets=[OLD_SECRET], now_s=T)
    assert _rule(exc) == "no_matching_signature"


def test_a_wrong_secret_is_refused() -> None:
    header = sign_hmac(BODY, secrets=[OLD_SECRET], timestamp_s=T)
    with pytest.raises(WebhookSignatureError) as exc:
        verify_hmac(BODY, header, secrets=[NEW_SECRET], now_s=T)
    assert _rule(exc) == "no_matching_signature"


def test_moving_the_timestamp_breaks_the_signature() -> None:
    # The timestamp is signed: a replayer cannot refresh it to get back into the window.
    header = sign_hmac(BODY, secrets=[OLD_SECRET], timestamp_s=T)
    refreshed = header.replace(f"t={T}", f"t={T + 1000}")
    with pytest.raises(WebhookSignatureError) as exc:
        verify_hmac(BODY, refreshed, secrets=[OLD_SECRET], now_s=T + 1000)
    assert _rule(exc) == "no_matching_signature"


def test_unknown_schemes_are_ignored_like_stripe() -> None:
    header = sign_hmac(BODY, secrets=[OLD_SECRET], timestamp_s=T) + ",v0=abc,v2=zzz"
    assert verify_hmac(BODY, header, secrets=[OLD_SECRET], now_s=T) == T


def test_a_wrong_v1_next_to_a_right_one_still_verifies() -> None:
    # Rotation on the signer's side: one of its secrets may be one the receiver no longer holds.
    good = sign_hmac(BODY, secrets=[OLD_SECRET], timestamp_s=T)
    header = f"t={T},v1={'0' * 64}," + good.split(",", 1)[1]
    assert verify_hmac(BODY, header, secrets=[OLD_SECRET], now_s=T) == T


GOOD_V1 = _v1(OLD_SECRET, BODY, T)


@pytest.mark.parametrize(
    ("header", "rule"),
    [
        (None, "missing_header"),
        ("", "missing_header"),
        (f"t={T},v1={GOOD_V1}," + "v0=a," * (MAX_HEADER_CHARS // 5), "header_too_long"),
        (f"t={T};v1={GOOD_V1}", "malformed_header"),
        (f"t={T}, v1={GOOD_V1}", "malformed_header"),
        (f"t={T},V1={GOOD_V1}", "malformed_header"),
        (f"t={T},v1=", "malformed_header"),
        (f"t={T},v1", "malformed_header"),
        (f"t={T},,v1={GOOD_V1}", "malformed_header"),
        (f"v1={GOOD_V1}", "missing_timestamp"),
        (f"t={T},t={T},v1={GOOD_V1}", "duplicate_timestamp"),
        (f"t=abc,v1={GOOD_V1}", "malformed_header"),
        (f"t=-{T},v1={GOOD_V1}", "malformed_header"),
        (f"t=+{T},v1={GOOD_V1}", "malformed_header"),
        ("t=" + "١٧٠٠٠٠٠٠٠٠" + f",v1={GOOD_V1}", "malformed_header"),  # Arabic-Indic digits
        (f"t={'9' * 13},v1={GOOD_V1}", "malformed_header"),
        (f"t={T}", "no_v1_signature"),
        (f"t={T},v0={GOOD_V1}", "no_v1_signature"),
        (f"t={T},v1={GOOD_V1.upper()}", "malformed_header"),
        (f"t={T},v1={GOOD_V1[:-1]}", "malformed_header"),
        (f"t={T}" + f",v1={GOOD_V1}" * (MAX_SECRETS + 1), "too_many_signatures"),
    ],
)
def test_malformed_headers_are_refused_with_their_rule(header: str | None, rule: str) -> None:
    with pytest.raises(WebhookSignatureError) as exc:
        verify_hmac(BODY, header, secrets=[OLD_SECRET], now_s=T)
    assert _rule(exc) == rule


def test_the_header_length_limit_is_exact() -> None:
    base = f"t={T},v1={GOOD_V1},v0="
    at_limit = base + "a" * (MAX_HEADER_CHARS - len(base))
    assert verify_hmac(BODY, at_limit, secrets=[OLD_SECRET], now_s=T) == T
    with pytest.raises(WebhookSignatureError) as exc:
        verify_hmac(BODY, at_limit + "a", secrets=[OLD_SECRET], now_s=T)
    assert _rule(exc) == "header_too_long"


def test_find_header_is_case_insensitive() -> None:
    headers = {"content-type": "application/json", "pishkhan-signature": "t=1,v1=x"}
    assert find_header(headers, HMAC_HEADER) == "t=1,v1=x"
    assert find_header(headers, ED25519_HEADER) is None


# --- HMAC: interoperability with the stripe SDK --------------------------------------------------

STRIPE_SECRET = "whsec_test_interop_0123456789"


def test_stripe_sdk_verifies_our_header() -> None:
    header = sign_hmac(BODY, secrets=[STRIPE_SECRET.encode()], timestamp_s=T)
    # tolerance=None: the SDK would compare against its own clock; ours was checked above.
    assert stripe.WebhookSignature.verify_header(BODY, header, STRIPE_SECRET, tolerance=None)


def test_stripe_sdk_refuses_our_header_over_another_body() -> None:
    header = sign_hmac(BODY, secrets=[STRIPE_SECRET.encode()], timestamp_s=T)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(BODY + b" ", header, STRIPE_SECRET, tolerance=None)


def test_we_verify_the_stripe_sdk_header() -> None:
    header = stripe.WebhookSignature.generate_signature_header(
        BODY.decode(), STRIPE_SECRET, timestamp=T
    )
    assert verify_hmac(BODY, header, secrets=[STRIPE_SECRET.encode()], now_s=T) == T


def test_we_verify_a_header_computed_as_stripe_documents_it() -> None:
    # https://docs.stripe.com/webhooks#verify-manually: HMAC-SHA256 keyed with the endpoint
    # secret over "<t>.<payload>", hex, in the v1 element; v0 is a legacy scheme to ignore.
    signed = f"{T}.{BODY.decode()}".encode()
    v1 = hmac.new(STRIPE_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    header = f"t={T},v1={v1},v0={'f' * 64}"
    assert verify_hmac(BODY, header, secrets=[STRIPE_SECRET.encode()], now_s=T + 1) == T


# --- Ed25519 -------------------------------------------------------------------------------------


def _rfc8037_key() -> Ed25519PrivateKey:
    raw = parse_b64url(RFC8037_D)
    assert raw is not None
    return Ed25519PrivateKey.from_private_bytes(raw)


KEY = _rfc8037_key()
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYS = ed25519_key_set([KEY.public_key(), OTHER_KEY.public_key()])


def test_kid_is_the_rfc8037_thumbprint() -> None:
    assert ed25519_kid(KEY.public_key()) == RFC8037_THUMBPRINT
    assert set(KEYS) == {RFC8037_THUMBPRINT, ed25519_kid(OTHER_KEY.public_key())}


def test_sign_ed25519_header_shape_and_signature() -> None:
    header = sign_ed25519(BODY, private_key=KEY, kid=RFC8037_THUMBPRINT, timestamp_s=T)
    sig = KEY.sign(f"{T}.".encode() + BODY)  # Ed25519 is deterministic (RFC 8032)
    assert header == f"t={T},kid={RFC8037_THUMBPRINT},sig={b64url_encode(sig)}"
    assert verify_ed25519(BODY, header, public_keys=KEYS, now_s=T) == T


def test_sign_ed25519_refuses_a_kid_of_another_key() -> None:
    with pytest.raises(ValueError, match="thumbprint"):
        sign_ed25519(BODY, private_key=OTHER_KEY, kid=RFC8037_THUMBPRINT, timestamp_s=T)


def test_an_unknown_kid_is_refused() -> None:
    header = sign_ed25519(BODY, private_key=KEY, kid=RFC8037_THUMBPRINT, timestamp_s=T)
    only_other = ed25519_key_set([OTHER_KEY.public_key()])
    with pytest.raises(WebhookSignatureError) as exc:
        verify_ed25519(BODY, header, public_keys=only_other, now_s=T)
    assert _rule(exc) == "unknown_kid"


def test_the_key_comes_from_the_verifier_set_not_the_header() -> None:
    # The other key signs but the header claims the RFC key's kid: the RFC key is used and fails.
    sig = b64url_encode(OTHER_KEY.sign(f"{T}.".encode() + BODY))
    header = f"t={T},kid={RFC8037_THUMBPRINT},sig={sig}"
    with pytest.raises(WebhookSignatureError) as exc:
        verify_ed25519(BODY, header, public_keys=KEYS, now_s=T)
    assert _rule(exc) == "no_matching_signature"


def test_ed25519_tampered_body_and_window() -> None:
    header = sign_ed25519(BODY, private_key=KEY, kid=RFC8037_THUMBPRINT, timestamp_s=T)
    with pytest.raises(WebhookSignatureError) as tampered:
        verify_ed25519(BODY + b"\n", header, public_keys=KEYS, now_s=T)
    assert _rule(tampered) == "no_matching_signature"
    for now_s in (T - DEFAULT_TOLERANCE_S - 1, T + DEFAULT_TOLERANCE_S + 1):
        with pytest.raises(WebhookSignatureError) as stale:
            verify_ed25519(BODY, header, public_keys=KEYS, now_s=now_s)
        assert _rule(stale) == "timestamp_out_of_window"


GOOD_SIG = b64url_encode(KEY.sign(f"{T}.".encode() + BODY))


@pytest.mark.parametrize(
    ("header", "rule"),
    [
        (None, "missing_header"),
        (f"kid={RFC8037_THUMBPRINT},sig={GOOD_SIG}", "missing_timestamp"),
        (f"t={T},sig={GOOD_SIG}", "malformed_header"),
        (f"t={T},kid={RFC8037_THUMBPRINT}", "malformed_header"),
        (
            f"t={T},kid={RFC8037_THUMBPRINT},kid={RFC8037_THUMBPRINT},sig={GOOD_SIG}",
            "duplicate_element",
        ),
        (f"t={T},kid={RFC8037_THUMBPRINT},sig={GOOD_SIG},sig={GOOD_SIG}", "duplicate_element"),
        (f"t={T},kid={RFC8037_THUMBPRINT},sig={GOOD_SIG}==", "malformed_header"),
        (f"t={T},kid={RFC8037_THUMBPRINT},sig={GOOD_SIG[:-2]}", "malformed_header"),
        (f"t={T},kid={RFC8037_THUMBPRINT},sig={GOOD_SIG.replace('_', '/')}", "malformed_header"),
        (f"t={T},kid={RFC8037_THUMBPRINT}x,sig={GOOD_SIG}", "malformed_header"),
        (f"t={T},kid=,sig={GOOD_SIG}", "malformed_header"),
    ],
)
def test_malformed_ed25519_headers(header: str | None, rule: str) -> None:
    if header is not None and "/" in header:
        assert "_" in GOOD_SIG  # the mutation must change something
    with pytest.raises(WebhookSignatureError) as exc:
        verify_ed25519(BODY, header, public_keys=KEYS, now_s=T)
    assert _rule(exc) == rule


def test_unknown_ed25519_elements_are_ignored() -> None:
    header = sign_ed25519(BODY, private_key=KEY, kid=RFC8037_THUMBPRINT, timestamp_s=T)
    assert verify_ed25519(BODY, header + ",alg=x", public_keys=KEYS, now_s=T) == T


# --- both at once --------------------------------------------------------------------------------


def test_outbound_headers_carry_both_signatures_at_one_timestamp() -> None:
    keys = OutboundSigningKeys(
        hmac_secrets=(OLD_SECRET, NEW_SECRET),
        ed25519_private_key=KEY,
        ed25519_kid=RFC8037_THUMBPRINT,
    )
    headers = outbound_headers(BODY, keys=keys, timestamp_s=T)
    assert set(headers) == {HMAC_HEADER, ED25519_HEADER}
    assert verify_hmac(BODY, headers[HMAC_HEADER], secrets=[NEW_SECRET], now_s=T) == T
    assert verify_ed25519(BODY, headers[ED25519_HEADER], public_keys=KEYS, now_s=T) == T
