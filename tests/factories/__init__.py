"""factory-boy factories, one module per app; import from here."""

from .backoffice import BrandFactory, StaffFactory
from .payments import PaymentMethodFactory, PspFactory
from .players import PlayerFactory
from .support import MacroFactory, TicketFactory  # noqa: F401 - re-exported

__all__ = ["BrandFactory", "PaymentMethodFactory", "PlayerFactory", "PspFactory", "StaffFactory"]
