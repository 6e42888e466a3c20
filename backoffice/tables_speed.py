"""Speed-ups for django-tables2 on pages rendered all day.

django-tables2 calls `inspect.signature` on a column's render function for every cell it
draws (50 rows x 10 columns = 500 calls a page). The signature of a function never changes,
so it is computed once per function here. Installed from `BackofficeConfig.ready()`.
"""

from __future__ import annotations

import functools

from django_tables2 import utils

_original_signature = utils.signature


@functools.lru_cache(maxsize=4096)
def _cached(func, bound: bool):
    args, keywords = _original_signature(func)
    if bound and args:
        args = args[1:]  # the bound method's self, which inspect drops for bound methods
    return args, keywords


def _signature(fn):
    func = getattr(fn, "__func__", None)
    try:
        if func is not None:
            return _cached(func, True)
        return _cached(fn, False)
    except TypeError:  # unhashable callables: no cache
        return _original_signature(fn)


def install() -> None:
    if utils.signature is not _signature:
        utils.signature = _signature
