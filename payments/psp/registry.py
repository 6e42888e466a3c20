"""Adapters by key. `Psp.adapter` names one of these."""

from __future__ import annotations

from importlib import import_module

from ..exceptions import PspError

_ADAPTERS: dict = {}

# The adapter modules; add a new PSP's module here.
ADAPTER_MODULES = ("payments.psp.cardpay", "payments.psp.openbank")


def register_adapter(cls):
    instance = cls()
    if not instance.key:
        raise ValueError(f"{cls.__name__} has no key.")
    _ADAPTERS[instance.key] = instance
    return cls


_loaded = False


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in ADAPTER_MODULES:
            import_module(module)
        _loaded = True


def get_adapter(key: str):
    _load()
    try:
        return _ADAPTERS[key]
    except KeyError:
        raise PspError(f"No PSP adapter is registered as {key!r}.")


def adapter_choices() -> list[tuple[str, str]]:
    _load()
    return sorted((a.key, a.label) for a in _ADAPTERS.values())
