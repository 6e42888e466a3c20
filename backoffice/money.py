"""Formatting money at the edge. Amounts are integers in minor units; floats never touch them."""

from __future__ import annotations

from decimal import Decimal

# ISO 4217 exponents and common crypto precisions; `payments.Currency` rows override these.
DEFAULT_EXPONENTS = {
    "EUR": 2, "USD": 2, "GBP": 2, "SEK": 2, "NOK": 2, "DKK": 2, "CAD": 2, "BRL": 2, "MXN": 2,
    "CHF": 2, "PLN": 2, "JPY": 0, "KRW": 0, "CLP": 0, "BHD": 3, "KWD": 3,
    "BTC": 8, "ETH": 8, "USDT": 6, "LTC": 8,
}  # fmt: skip

_overrides: dict[str, int] = {}


def register_exponent(code: str, exponent: int) -> None:
    _overrides[code.upper()] = exponent


def exponent_for(code: str) -> int:
    code = (code or "").upper()
    if code in _overrides:
        return _overrides[code]
    return DEFAULT_EXPONENTS.get(code, 2)


def to_decimal(minor: int, code: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent_for(code))


def to_minor(amount: Decimal | str, code: str) -> int:
    """Major units (a Decimal or its string) to minor units; refuses sub-minor precision."""
    value = Decimal(str(amount)).scaleb(exponent_for(code))
    if value != value.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {code} allows.")
    return int(value)


def format_money(minor: int | None, code: str) -> str:
    if minor is None:
        return "—"
    exp = exponent_for(code)
    value = to_decimal(minor, code)
    return f"{value:,.{exp}f} {code.upper()}"
