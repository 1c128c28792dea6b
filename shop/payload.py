"""The invoice payload: the order reference, signed so a forged or altered one is recognised.

Telegram hands the payload back in pre_checkout_query and successful_payment. It is at most
128 bytes; ours is the 8-character reference, a colon and a 43-character HMAC-SHA256.
"""

from django.core import signing

# The salt keeps its first name: invoices already sent carry payloads signed with it.
_SALT = "botbridge.invoice-payload"
MAX_BYTES = 128


def payload_sign(reference: str) -> str:
    payload = signing.Signer(salt=_SALT, algorithm="sha256").sign(reference)
    assert len(payload.encode()) <= MAX_BYTES
    return payload


def payload_reference(payload: str | None) -> str | None:
    """The order reference inside a genuine payload, or None for anything else."""
    if not payload or len(payload.encode()) > MAX_BYTES:
        return None
    try:
        return signing.Signer(salt=_SALT, algorithm="sha256").unsign(payload)
    except signing.BadSignature:
        return None
