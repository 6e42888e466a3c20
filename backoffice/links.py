"""Where an object of a given type lives in the UI, for links from the timeline, the audit
trail and search. Each app registers its types in its `apps.py` `ready()` or `search.py`:

    register_object_url("payments.deposit", "payments:deposit_detail")
"""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

_URLS: dict[str, str] = {}


def register_object_url(label_lower: str, url_name: str) -> None:
    """`label_lower` is `app_label.modelname`; the URL takes the object's pk as `pk`."""
    _URLS[label_lower] = url_name


def object_url(object_type: str, object_id: str | int) -> str | None:
    url_name = _URLS.get(object_type)
    if not url_name or object_id in (None, ""):
        return None
    try:
        return reverse(url_name, kwargs={"pk": object_id})
    except NoReverseMatch:
        return None


register_object_url("backoffice.approvalrequest", "backoffice:approval_detail")
register_object_url("backoffice.auditevent", "backoffice:audit_detail")
