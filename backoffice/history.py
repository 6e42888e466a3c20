"""Change history for every model: who, from which IP, and why.

`audit_history()` is what every model's `history = ...` uses. The acting user comes from the
request (simple-history's middleware) or from a service setting `instance._history_user`; the
reason from `instance._change_reason` (set by services from the form's reason field).
"""

from django.db import models
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record


class HistoricalRowBase(models.Model):
    """Extra columns on every historical table."""

    history_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        abstract = True


def audit_history(**kwargs) -> HistoricalRecords:
    """A `HistoricalRecords` with the project's base columns."""
    kwargs.setdefault("bases", [HistoricalRowBase])
    return HistoricalRecords(**kwargs)


def _fill_ip(sender, instance, history_instance, **kwargs) -> None:
    request = getattr(HistoricalRecords.context, "request", None)
    if request is not None and hasattr(history_instance, "history_ip"):
        history_instance.history_ip = request.META.get("REMOTE_ADDR")


pre_create_historical_record.connect(_fill_ip, dispatch_uid="backoffice.history.fill_ip")
