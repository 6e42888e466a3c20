"""The permission matrix: every URL the project defines × every kind of visitor.

Each app lists its URLs in `tests/matrix/<app>.py` as `CASES = [Case(...), ...]` and, if its
URLs need objects, a `build(world)` function that creates them in brand A (the brand every
role user of the matrix works with) and stores them on `world` (a SimpleNamespace that already
holds `brand_a`, `brand_b` and `users`, a dict role → user). `tests/test_permission_matrix.py`
collects every module here, and fails if a URL pattern of the project has no Case.

What the runner checks for each Case, GET and (if `post`) POST:
- anonymous: redirected to the login page (or the Case's `public` answer);
- each role in `allowed` (GET) / `allowed_post` (POST): not 403/404/302-to-login, and below 500;
- each other role: 403;
- a disabled user who had an allowed role: redirected to login;
- a user with an allowed role who works only in brand B: 404 when `scoped` (the object is in
  brand A), else the same as in brand A.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

ALL_ROLES = frozenset(
    {
        "Support",
        "Payments",
        "Risk",
        "Compliance",
        "Bonus manager",
        "Game operations",
        "Admin",
        "Auditor",
    }
)


@dataclass(frozen=True)
class Case:
    url_name: str
    allowed: frozenset[str] | set[str]
    kwargs: Callable[[SimpleNamespace], dict[str, Any]] | dict[str, Any] = field(
        default_factory=dict
    )
    post: bool = False
    allowed_post: frozenset[str] | set[str] | None = None  # defaults to `allowed`
    post_data: Callable[[SimpleNamespace], dict[str, Any]] | dict[str, Any] = field(
        default_factory=dict
    )
    get: bool = True  # False for POST-only endpoints (GET must then answer 405 or 403)
    scoped: bool = False
    public: bool = False  # anonymous gets an answer, not the login page (health, webhooks)
    query: str = ""  # appended to the URL, e.g. "?q=x"

    def resolve_kwargs(self, world: SimpleNamespace) -> dict[str, Any]:
        return self.kwargs(world) if callable(self.kwargs) else dict(self.kwargs)

    def resolve_post_data(self, world: SimpleNamespace) -> dict[str, Any]:
        return self.post_data(world) if callable(self.post_data) else dict(self.post_data)
