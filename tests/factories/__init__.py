"""factory-boy factories, one module per app; import from here."""

from .backoffice import BrandFactory, StaffFactory
from .players import PlayerFactory

__all__ = ["BrandFactory", "PlayerFactory", "StaffFactory"]
