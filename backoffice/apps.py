from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    name = "backoffice"
    verbose_name = "Back office"

    def ready(self) -> None:
        from . import cached_choices, permission_cache, signals, tables_speed

        tables_speed.install()
        permission_cache.connect()
        cached_choices.connect()

        signals.load_plugins()
