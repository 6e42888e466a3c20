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


class AuditHistoricalRecords(HistoricalRecords):
    """`HistoricalRecords` that also records saves made through a proxy of the model.

    django-simple-history connects its signal handlers for the concrete model only, and Django
    sends `post_save` with the proxy class as sender, so a `Deposit(...).save()` would leave no
    history row for the `payments_payment` row it wrote. Proxies declared later are connected
    when their class is prepared (see `_connect_proxy`).
    """

    def finalize(self, sender, **kwargs):
        super().finalize(sender, **kwargs)
        if self.cls is sender:
            _RECORDS_BY_MODEL[sender] = self


_RECORDS_BY_MODEL: dict[type, AuditHistoricalRecords] = {}


def _connect_proxy(sender, **kwargs) -> None:
    if not sender._meta.proxy:
        return
    records = _RECORDS_BY_MODEL.get(sender._meta.concrete_model)
    if records is None:
        return
    models.signals.post_save.connect(records.post_save, sender=sender, weak=False)
    models.signals.post_delete.connect(records.post_delete, sender=sender, weak=False)
    models.signals.pre_delete.connect(records.pre_delete, sender=sender, weak=False)


models.signals.class_prepared.connect(_connect_proxy, weak=False)


def audit_history(**kwargs) -> AuditHistoricalRecords:
    """A `HistoricalRecords` with the project's base columns (proxies recorded too)."""
    kwargs.setdefault("bases", [HistoricalRowBase])
    return AuditHistoricalRecords(**kwargs)


def _fill_ip(sender, instance, history_instance, **kwargs) -> None:
    request = getattr(HistoricalRecords.context, "request", None)
    if request is not None and hasattr(history_instance, "history_ip"):
        history_instance.history_ip = request.META.get("REMOTE_ADDR")


pre_create_historical_record.connect(_fill_ip, dispatch_uid="backoffice.history.fill_ip")
