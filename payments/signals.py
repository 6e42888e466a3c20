"""Keep `backoffice.money` formatting in step with the `Currency` table (BTC has 8 decimals)."""

from django.core.signals import request_started
from django.db import DatabaseError
from django.db.models.signals import post_save
from django.dispatch import receiver

from backoffice.money import register_exponent

from .models import Currency

_loaded = False


def load_exponents() -> None:
    """Register every configured currency's exponent with the money formatter (once)."""
    global _loaded
    try:
        for code, exponent in Currency.objects.values_list("code", "exponent"):
            register_exponent(code, exponent)
    except DatabaseError:  # tables not migrated yet: the defaults stand
        return
    _loaded = True


@receiver(request_started, dispatch_uid="payments.load_exponents")
def _load_on_first_request(**kwargs) -> None:
    if not _loaded:
        load_exponents()


@receiver(post_save, sender=Currency, dispatch_uid="payments.currency_saved")
def _currency_saved(sender, instance: Currency, **kwargs) -> None:
    register_exponent(instance.code, instance.exponent)
