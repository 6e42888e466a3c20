"""CardPay: a card acquirer. JSON events, amounts in minor units, signed with HMAC-SHA256.

Signature header: `CardPay-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, where each v1
is HMAC-SHA256(secret, "<t>.<raw body>"). During a key rotation the provider sends one v1 per
active key; any match is enough. Deliveries whose t is more than 300 s from our clock are
refused (a replayed old delivery cannot be re-sent later).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

from ..exceptions import WebhookRejected
from .base import Envelope, PayoutResult, PspAdapter, PspEvent, Reason, dumps, tolerance_seconds
from .registry import register_adapter

SIGNATURE_HEADER = "CardPay-Signature"

# event type → (payment kind, status reached)
EVENT_STATUS = {
    "payment.pending": ("deposit", ""),
    "payment.authorised": ("deposit", "authorised"),
    "payment.captured": ("deposit", "captured"),
    "payment.declined": ("deposit", "failed"),
    "payment.expired": ("deposit", "expired"),
    "payment.refunded": ("deposit", "refunded"),
    "payment.reversed": ("deposit", "reversed"),
    "payment.chargeback": ("deposit", "charged_back"),
    "payout.pending": ("withdrawal", ""),
    "payout.paid": ("withdrawal", "paid"),
    "payout.failed": ("withdrawal", "failed"),
}
STATUS_EVENT = {v: k for k, v in EVENT_STATUS.items() if v[1]}


def _mac(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@register_adapter
class CardPayAdapter(PspAdapter):
    key = "cardpay"
    label = "CardPay (cards)"
    stored_headers = (SIGNATURE_HEADER,)

    def verify(self, psp, *, method, path, headers: Mapping[str, str], body, now) -> None:
        header = headers.get(SIGNATURE_HEADER, "")
        if not header:
            raise WebhookRejected(Reason.MISSING_SIGNATURE, f"No {SIGNATURE_HEADER} header.")
        timestamp, candidates = "", []
        for part in header.split(","):
            name, _, value = part.strip().partition("=")
            if name == "t":
                timestamp = value
            elif name == "v1" and value:
                candidates.append(value)
        if not timestamp.isdigit() or not candidates:
            raise WebhookRejected(Reason.BAD_SIGNATURE, "The signature header is malformed.")
        secrets = [s for s in (psp.signing_keys or {}).values() if s]
        matched = False
        for secret in secrets:
            expected = _mac(secret, timestamp, body)
            # compare against every candidate (no early exit on the secret side)
            for candidate in candidates:
                matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise WebhookRejected(Reason.BAD_SIGNATURE, "No signature matches.")
        if abs(now - int(timestamp)) > tolerance_seconds():
            raise WebhookRejected(Reason.STALE, f"Signed at {timestamp}, outside the tolerance.")

    def envelope(self, body: bytes) -> Envelope:
        data = self.load_json(body)
        obj = (data.get("data") or {}).get("object") or {}
        event_id, event_type = data.get("id"), data.get("type")
        if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
            raise WebhookRejected(Reason.MALFORMED, "The event has no id or type.")
        return Envelope(event_id[:200], event_type[:80], str(obj.get("id") or "")[:100])

    def parse(self, body: bytes) -> PspEvent:
        data = self.load_json(body)
        obj = (data.get("data") or {}).get("object") or {}
        event_type = data["type"]
        if event_type not in EVENT_STATUS:
            return PspEvent(data["id"], event_type, "deposit", "", str(obj.get("id") or ""))
        payment_kind, status = EVENT_STATUS[event_type]
        card = obj.get("card") or {}
        instrument = ""
        if card.get("last4"):
            instrument = f"{str(card.get('brand', 'card')).upper()} •••• {card['last4']}"
        amount = obj.get("amount")
        return PspEvent(
            event_id=data["id"],
            event_type=event_type,
            payment_kind=payment_kind,
            status=status,
            psp_reference=str(obj.get("id") or ""),
            merchant_reference=str(obj.get("merchant_reference") or ""),
            player_ref=str(obj.get("customer_reference") or ""),
            amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
            currency=str(obj.get("currency") or "").upper(),
            method=str(obj.get("payment_method") or "card"),
            country=str(obj.get("country") or "").upper(),
            instrument=instrument,
            instrument_fingerprint=str(card.get("fingerprint") or ""),
            reason=str(obj.get("decline_code") or obj.get("reason") or ""),
            occurred_at=_from_unix(data.get("created")),
        )

    def submit_payout(self, psp, withdrawal) -> PayoutResult:
        if not psp.api_base_url:
            return PayoutResult(
                psp_reference=f"po_{withdrawal.reference}", message="Accepted by the sandbox."
            )
        body = dumps(
            {
                "merchant_reference": withdrawal.reference,
                "amount": withdrawal.amount,
                "currency": withdrawal.currency_id,
                "customer_reference": withdrawal.player.external_ref,
            }
        )
        path = "/v1/payouts"
        headers = self.sign(psp, method="POST", path=path, body=body, now=_now())
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = withdrawal.reference
        status_code, data = self.post_json(psp, path, body, headers)
        if status_code >= 400 or data.get("status") == "declined":
            return PayoutResult(
                psp_reference=str(data.get("id") or ""),
                declined=True,
                reason=str(data.get("decline_code") or "declined"),
                message=str(data.get("message") or f"Declined ({status_code})."),
            )
        return PayoutResult(psp_reference=str(data.get("id") or ""), message="Accepted.")

    # -- the provider's side ----------------------------------------------------------------

    def encode(self, event: PspEvent, *, created: float) -> bytes:
        event_type = event.event_type or STATUS_EVENT[(event.payment_kind, event.status)]
        obj = {
            "id": event.psp_reference,
            "merchant_reference": event.merchant_reference or None,
            "customer_reference": event.player_ref or None,
            "amount": event.amount,
            "currency": event.currency,
            "payment_method": event.method or "card",
            "country": event.country or None,
        }
        if event.instrument:
            last4 = event.instrument[-4:]
            obj["card"] = {
                "brand": event.instrument.split(" ")[0].lower(),
                "last4": last4,
                "fingerprint": event.instrument_fingerprint or None,
            }
        if event.reason:
            obj["decline_code"] = event.reason
        return dumps(
            {
                "id": event.event_id,
                "type": event_type,
                "created": int(created),
                "data": {"object": obj},
            }
        )

    def sign(self, psp, *, method, path, body, now) -> dict[str, str]:
        _, secret = self.current_key(psp)
        timestamp = str(int(now))
        return {SIGNATURE_HEADER: f"t={timestamp},v1={_mac(secret, timestamp, body)}"}


def _from_unix(value) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    return None


def _now() -> float:
    import time

    return time.time()
