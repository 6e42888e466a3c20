"""The one interface every PSP adapter implements.

An adapter knows one provider's wire format: how its webhooks are signed (`verify`), how to
read the event id before storing (`envelope`), how to turn a stored body into a `PspEvent` our
services understand (`parse`), and how to submit a payout (`submit_payout`). It also knows the
provider's side of the wire (`encode`, `sign`), which the simulator and the tests use to send
exactly what the provider would.

To add a PSP: write `payments/psp/<name>.py` with a subclass of `PspAdapter`, decorate it with
`@register_adapter`, import it in `payments/psp/registry.py`, and create `Psp` rows with
`adapter="<key>"`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import requests
from django.conf import settings

from ..exceptions import PspUnavailable, WebhookRejected
from ..models import PspWebhookRejection

Reason = PspWebhookRejection.Reason

DEFAULT_TOLERANCE_SECONDS = 300


def tolerance_seconds() -> int:
    """How far a webhook's signed timestamp may be from our clock (300 s unless configured)."""
    return int(getattr(settings, "PAYMENTS_WEBHOOK_TOLERANCE_SECONDS", DEFAULT_TOLERANCE_SECONDS))


@dataclass(frozen=True)
class Envelope:
    """What intake reads before storing: enough to deduplicate and to find the payment."""

    event_id: str
    event_type: str
    psp_reference: str


@dataclass(frozen=True)
class PspEvent:
    """A PSP event in our terms, whatever the provider's format.

    `status` is the `Payment.Status` the event says the payment reached ("" for informational
    events such as "pending"). Deposits that start at the PSP carry the player's external
    reference and everything needed to create the deposit; events about payments we started
    carry our `merchant_reference`.
    """

    event_id: str
    event_type: str
    payment_kind: str  # "deposit" or "withdrawal"
    status: str
    psp_reference: str
    merchant_reference: str = ""
    player_ref: str = ""
    amount: int | None = None
    currency: str = ""
    method: str = ""
    country: str = ""
    instrument: str = ""
    instrument_fingerprint: str = ""
    reason: str = ""
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class PayoutResult:
    """The PSP's synchronous answer to a payout submission (no answer raises PspUnavailable)."""

    psp_reference: str = ""
    declined: bool = False
    reason: str = ""
    message: str = ""


class PspAdapter:
    """Base class: subclasses set `key`, `label` and implement the methods below."""

    key: str = ""
    label: str = ""
    # Headers kept with each stored event (the signature material, for later inspection).
    stored_headers: tuple[str, ...] = ()

    # -- our side --------------------------------------------------------------------------

    def verify(
        self, psp, *, method: str, path: str, headers: Mapping[str, str], body: bytes, now: float
    ) -> None:
        """Raise `WebhookRejected` unless the delivery is signed by `psp` and fresh."""
        raise NotImplementedError

    def envelope(self, body: bytes) -> Envelope:
        raise NotImplementedError

    def parse(self, body: bytes) -> PspEvent:
        raise NotImplementedError

    def submit_payout(self, psp, withdrawal) -> PayoutResult:
        raise NotImplementedError

    # -- the provider's side (simulator, tests) --------------------------------------------

    def post_json(self, psp, path: str, body: bytes, headers: dict) -> tuple[int, dict]:
        """POST a signed request to the PSP's API: (HTTP status, JSON body or {}).

        No answer, or a 5xx, raises `PspUnavailable`: the outcome is unknown and the payout
        stays held until the PSP or reconciliation says what happened.
        """
        try:
            response = requests.post(
                psp.api_base_url.rstrip("/") + path, data=body, headers=headers, timeout=(3, 10)
            )
        except requests.RequestException as exc:
            raise PspUnavailable(f"{psp.name} did not answer: {type(exc).__name__}.")
        if response.status_code >= 500:
            raise PspUnavailable(f"{psp.name} answered {response.status_code}.")
        try:
            data = response.json()
        except ValueError:
            data = {}
        return response.status_code, data if isinstance(data, dict) else {}

    def encode(self, event: PspEvent, *, created: float) -> bytes:
        raise NotImplementedError

    def sign(self, psp, *, method: str, path: str, body: bytes, now: float) -> dict[str, str]:
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def load_json(body: bytes) -> dict:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookRejected(Reason.MALFORMED, "The body is not JSON.")
        if not isinstance(data, dict):
            raise WebhookRejected(Reason.MALFORMED, "The body is not a JSON object.")
        return data

    @staticmethod
    def current_key(psp) -> tuple[str, str]:
        """The key the provider signs with now: the one named "current", else the first."""
        keys = psp.signing_keys or {}
        if not keys:
            raise WebhookRejected(Reason.BAD_SIGNATURE, "No signing key is configured.")
        key_id = "current" if "current" in keys else next(iter(keys))
        return key_id, keys[key_id]


def dumps(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
