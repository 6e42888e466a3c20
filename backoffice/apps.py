from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    name = "backoffice"
    verbose_name = "Back office"

    def ready(self) -> None:
        from . import signals, tables_speed

        tables_speed.install()

        signals.load_plugins()
