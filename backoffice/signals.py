"""Start-up wiring: each app's approvals, search providers, dashboard counters and roles are
imported here so their registries fill before the first request."""

from importlib import import_module

from django.apps import apps
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

_PLUGIN_MODULES = ("approvals", "search", "dashboard", "roles", "panels", "links")


def load_plugins() -> None:
    for config in apps.get_app_configs():
        if config.name.split(".")[0] not in _OUR_APPS:
            continue
        for module in _PLUGIN_MODULES:
            try:
                import_module(f"{config.name}.{module}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.{module}":
                    raise


_OUR_APPS = {
    "backoffice", "players", "payments", "support", "bonuses", "compliance", "games", "reporting",
}  # fmt: skip


@receiver(user_logged_in, dispatch_uid="backoffice.track_session")
def track_session(sender, request, user, **kwargs):
    """Remember the session so deactivating the user can end it at once."""
    import time

    from .models import StaffSession

    if request is None or not hasattr(request, "session"):
        return
    request.session["login_at"] = time.time()
    if not request.session.session_key:
        request.session.save()
    StaffSession.objects.update_or_create(
        session_key=request.session.session_key,
        defaults={"user": user, "ip_address": request.META.get("REMOTE_ADDR")},
    )
