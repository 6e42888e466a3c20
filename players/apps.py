from django.apps import AppConfig


class PlayersConfig(AppConfig):
    name = "players"

    def ready(self) -> None:
        from . import player_panels  # noqa: F401 - registers the app's own panels
