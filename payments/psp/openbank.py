"""OpenBank: a pay-by-bank provider. ISO 20022-style status codes, decimal amount strings,
and a request signature that covers the method, the path, a timestamp and the body's hash.

Headers:
    X-OB-Key-Id:     which of our shared keys signed (keys rotate by id)
    X-OB-Timestamp:  ISO 8601 UTC time of signing
    X-OB-Signature:  base64(HMAC-SHA512(key, message)), where message is
                     "<METHOD>\\n<path>\\n<timestamp>\\n<sha256 hex of body>"

Binding the path means a delivery signed for one PSP's URL cannot be replayed to another's.
Statuses: PDNG pending, ACTC accepted (authorised), ACSC settled (captured / paid), RJCT
rejected (failed), CANC cancelled by the payer (expired).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from backoffice.money import exponent_for, to_decimal, to_minor

from ..exceptions import WebhookRejected
from .base import Envelope, PayoutResult, PspAdapter, PspEvent, Reason, dumps, tolerance_seconds
from .registry import register_adapter

KEY_ID_HEADER = "X-OB-Key-Id"
TIMESTAMP_HEADER = "X-OB-Timestamp"
SIGNATURE_HEADER = "X-OB-Signature"

INBOUND = {
    "PDNG": "",
    "ACTC": "authorised",
    "ACSC": "captured",
    "RJCT": "failed",
    "CANC": "expired",
}
OUTBOUND = {"PDNG": "", "ACSC": "paid", "RJCT": "failed"}
# Events that are not a payment status change.
SPECIAL = {"refund.settled": "refunded", "payment.recalled": "reversed"}


def _canonical(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path}\n{timestamp}\n{digest}".encode()


def _mac(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha512).digest()).decode()


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@register_adapter
class OpenBankAdapter(PspAdapter):
    key = "openbank"
    label = "OpenBank (pay by bank)"
    stored_headers = (KEY_ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)

    def verify(self, psp, *, method, path, headers: Mapping[str, str], body, now) -> None:
        key_id = headers.get(KEY_ID_HEADER, "")
        stamp = headers.get(TIMESTAMP_HEADER, "")
        signature = headers.get(SIGNATURE_HEADER, "")
        if not (key_id and stamp and signature):
            raise WebhookRejected(Reason.MISSING_SIGNATURE, "Signature headers are missing.")
        secret = (psp.signing_keys or {}).get(key_id)
        # An unknown key id still costs one MAC, so timing does not reveal which ids exist.
        expected = _mac(secret or "unknown-key", _canonical(method, path, stamp, body))
        if not hmac.compare_digest(expected.encode(), signature.encode()) or not secret:
            raise WebhookRejected(
                Reason.BAD_SIGNATURE, f"Signature does not verify (key {key_id[:20]})."
            )
        signed_at = _parse_time(stamp)
        if signed_at is None:
            raise WebhookRejected(Reason.BAD_SIGNATURE, "The timestamp is not ISO 8601.")
        if abs(now - signed_at.timestamp()) > tolerance_seconds():
            raise WebhookRejected(Reason.STALE, f"Signed at {stamp}, outside the tolerance.")

    def envelope(self, body: bytes) -> Envelope:
        data = self.load_json(body)
        event_id, event_type = data.get("eventId"), data.get("eventType")
        payment = data.get("payment")
        if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
            raise WebhookRejected(Reason.MALFORMED, "The event has no eventId or eventType.")
        if not isinstance(payment, dict):
            raise WebhookRejected(Reason.MALFORMED, "The event has no payment object.")
        status = payment.get("status") or ""
        label = f"{event_type}:{status}" if status else event_type
        return Envelope(event_id[:200], label[:80], str(payment.get("paymentId") or "")[:100])

    def parse(self, body: bytes) -> PspEvent:
        data = self.load_json(body)
        event_type = data["eventType"]
        p = data["payment"]
        outbound = p.get("direction") == "outbound"
        code = str(p.get("status") or "")
        if event_type in SPECIAL and not outbound:
            status = SPECIAL[event_type]
        elif event_type == "payment.status":
            status = (OUTBOUND if outbound else INBOUND).get(code, "")
        else:
            status = ""
        amount_obj = p.get("amount") or {}
        currency = str(amount_obj.get("currency") or "").upper()
        amount = None
        try:
            if currency and amount_obj.get("value") is not None:
                amount = to_minor(Decimal(str(amount_obj["value"])), currency)
        except (InvalidOperation, ValueError):
            amount = None
        payer = p.get("payer") or {}
        return PspEvent(
            event_id=data["eventId"],
            event_type=f"{event_type}:{code}" if code else event_type,
            payment_kind="withdrawal" if outbound else "deposit",
            status=status,
            psp_reference=str(p.get("paymentId") or ""),
            merchant_reference=str(p.get("endToEndId") or ""),
            player_ref=str(payer.get("reference") or ""),
            amount=amount,
            currency=currency,
            method="open_banking",
            country=str(p.get("country") or "").upper(),
            instrument=str(payer.get("accountMasked") or ""),
            instrument_fingerprint=str(payer.get("accountHash") or ""),
            reason=str(p.get("reasonCode") or ""),
            occurred_at=_parse_time(str(data.get("createdAt") or "")),
        )

    def submit_payout(self, psp, withdrawal) -> PayoutResult:
        if not psp.api_base_url:
            return PayoutResult(
                psp_reference=f"OBP-{withdrawal.reference}", message="Accepted by the sandbox."
            )
        exp = exponent_for(withdrawal.currency_id)
        body = dumps(
            {
                "endToEndId": withdrawal.reference,
                "amount": {
                    "value": f"{to_decimal(withdrawal.amount, withdrawal.currency_id):.{exp}f}",
                    "currency": withdrawal.currency_id,
                },
                "creditor": {"reference": withdrawal.player.external_ref},
            }
        )
        path = "/payouts"
        import time

        headers = self.sign(psp, method="POST", path=path, body=body, now=time.time())
        headers["Content-Type"] = "application/json"
        status_code, data = self.post_json(psp, path, body, headers)
        if status_code >= 400 or data.get("status") == "RJCT":
            return PayoutResult(
                psp_reference=str(data.get("paymentId") or ""),
                declined=True,
                reason=str(data.get("reasonCode") or "RJCT"),
                message=str(data.get("message") or f"Rejected ({status_code})."),
            )
        return PayoutResult(psp_reference=str(data.get("paymentId") or ""), message="Accepted.")

    # -- the provider's side ----------------------------------------------------------------

    def encode(self, event: PspEvent, *, created: float) -> bytes:
        outbound = event.payment_kind == "withdrawal"
        event_type, code = "payment.status", ""
        if not outbound and event.status in ("refunded", "reversed"):
            event_type = {v: k for k, v in SPECIAL.items()}[event.status]
            code = "ACSC"
        else:
            table = OUTBOUND if outbound else INBOUND
            code = {v: k for k, v in table.items()}[event.status]
        exp = exponent_for(event.currency)
        payment = {
            "paymentId": event.psp_reference,
            "endToEndId": event.merchant_reference or None,
            "direction": "outbound" if outbound else "inbound",
            "status": code,
            "amount": {
                "value": f"{to_decimal(event.amount or 0, event.currency):.{exp}f}",
                "currency": event.currency,
            },
            "payer": {
                "reference": event.player_ref or None,
                "accountMasked": event.instrument or None,
                "accountHash": event.instrument_fingerprint or None,
            },
            "country": event.country or None,
        }
        if event.reason:
            payment["reasonCode"] = event.reason
        created_at = datetime.fromtimestamp(created, tz=UTC).isoformat().replace("+00:00", "Z")
        return dumps(
            {
                "eventId": event.event_id,
                "eventType": event_type,
                "createdAt": created_at,
                "payment": payment,
            }
        )

    def sign(self, psp, *, method, path, body, now) -> dict[str, str]:
        key_id, secret = self.current_key(psp)
        stamp = datetime.fromtimestamp(int(now), tz=UTC).isoformat().replace("+00:00", "Z")
        return {
            KEY_ID_HEADER: key_id,
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: _mac(secret, _canonical(method, path, stamp, body)),
        }
