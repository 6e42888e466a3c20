"""The platform API (OpenAPI-documented) mounts here in the integration wave."""

urlpatterns: list = []
