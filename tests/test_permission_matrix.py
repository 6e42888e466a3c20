"""The permission matrix: every URL of the project × every kind of visitor (see the contract in
`tests/matrix/__init__.py`).

How it runs:
- The world (brands, one user per role in brand A, a disabled and a brand-B-only twin of each,
  then every `tests/matrix/*.py` module's `build(world)`) is built once for this module inside
  one transaction, rolled back at the end.
- Every request runs inside its own savepoint that is rolled back, so a POST by an allowed user
  (or a GET that writes an audit event or a session) never leaks into the next case. The
  savepoint counts as a test case's block for `atomic(durable=True)`, as in Django's TestCase.
- Before resolving a Case's `kwargs` and `post_data`, the runner sets `world.visitor` to the
  user making the request (None for anonymous), for URLs that only work on the visitor's own
  objects (a saved filter, a request one may cancel).
- A brand-B-only user is expected to get 404 on a `scoped` case only when brand A is really
  outside their scope: roles covering every brand (Admin, Auditor) see brand A's objects too.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import transaction
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from guardian.shortcuts import assign_perm

import tests.matrix
from backoffice import roles
from backoffice.models import ApprovalRequest, SavedFilter
from backoffice.scoping import brand_ids_for
from backoffice.staff_services import ensure_roles
from tests.conftest import verified_client
from tests.factories import BrandFactory, StaffFactory
from tests.matrix import Case

# Marked so pytest-django sets up the test database even when only these tests are selected.
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _django_db_marker():
    """Replaces pytest-django's per-test handling of the mark above for this module only.

    That handling wraps every test in a TestCase set-up (~15 ms a test here, most of the
    matrix's time); isolation comes instead from the world's transaction and the savepoint
    around each request. Should pytest-django rename its fixture, this one is simply unused
    and the matrix still passes, only slower.
    """


SKIPPED_PREFIXES = ("static/", "media/", "django-admin/")
CSRF_EXEMPT_PREFIXES = ("/webhooks/",)  # PSPs sign their callbacks; no browser, no CSRF token


# --- what to check ----------------------------------------------------------------------------


def _modules() -> list:
    names = sorted(m.name for m in pkgutil.iter_modules(tests.matrix.__path__))
    names.sort(key=lambda n: n != "core")  # the foundation's objects first
    return [importlib.import_module(f"tests.matrix.{name}") for name in names]


MODULES = _modules()
CASES: list[Case] = [case for module in MODULES for case in getattr(module, "CASES", [])]


def url_patterns() -> Iterator[tuple[str | None, str]]:
    """(full URL name or None, route) of every pattern reachable from the root URLconf."""

    def walk(patterns, prefix: str, namespaces: list[str]):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if route.startswith(SKIPPED_PREFIXES):
                continue
            if isinstance(entry, URLResolver):
                spaces = namespaces + [entry.namespace] if entry.namespace else namespaces
                yield from walk(entry.url_patterns, route, spaces)
            elif isinstance(entry, URLPattern):
                name = ":".join(namespaces + [entry.name]) if entry.name else None
                yield name, route

    yield from walk(get_resolver().url_patterns, "", [])


def _case_id(index: int, case: Case) -> str:
    same = [c for c in CASES[:index] if c.url_name == case.url_name]
    return case.url_name + (f"[{len(same) + 1}]" if same else "")


@dataclass(frozen=True)
class Visitor:
    kind: str  # "anonymous", "role" (brand A), "disabled", "brand_b"
    role: str | None = None

    @property
    def key(self) -> str:
        return self.kind if self.role is None else f"{self.kind}:{self.role}"


def _allowed(case: Case, method: str) -> frozenset[str]:
    if method == "post" and case.allowed_post is not None:
        return frozenset(case.allowed_post)
    return frozenset(case.allowed)


def _visitors(case: Case, method: str) -> list[Visitor]:
    """Anonymous, every role in brand A, and the disabled and brand-B twins of allowed roles.

    A POST-only URL's GET is checked for anonymous and the brand A roles only.
    """
    out = [Visitor("anonymous")] + [Visitor("role", r) for r in roles.ROLES]
    if method == "get" and not case.get:
        return out
    allowed = sorted(_allowed(case, method))
    out += [Visitor("disabled", r) for r in allowed]
    out += [Visitor("brand_b", r) for r in allowed]
    return out


def _params(method: str) -> list:
    params = []
    for index, case in enumerate(CASES):
        if method == "post" and not case.post:
            continue
        for visitor in _visitors(case, method):
            params.append(pytest.param(index, visitor, id=f"{_case_id(index, case)}-{visitor.key}"))
    return params


# --- the world --------------------------------------------------------------------------------


def _staff(username: str, role: str, groups: dict, brand, *, active: bool = True):
    user = StaffFactory(username=username, is_active=active)
    user.groups.add(groups[role])
    assign_perm("backoffice.access_brand", user, brand)
    return user


def build_world() -> SimpleNamespace:
    groups = {g.name: g for g in ensure_roles(reset=True)}
    brand_a = BrandFactory(
        code="alpha", name="Alpha Casino", jurisdiction="MT", default_currency="EUR"
    )
    brand_b = BrandFactory(code="beta", name="Beta Bets", jurisdiction="SE", default_currency="SEK")
    world = SimpleNamespace(
        brand_a=brand_a, brand_b=brand_b, users={}, disabled_users={}, brand_b_users={}
    )
    for role in roles.ROLES:
        slug = role.lower().replace(" ", "-")
        world.users[role] = _staff(f"mx-{slug}", role, groups, brand_a)
        world.disabled_users[role] = _staff(f"mx-{slug}-off", role, groups, brand_a, active=False)
        world.brand_b_users[role] = _staff(f"mx-{slug}-b", role, groups, brand_b)
    world.visitor = None
    for module in MODULES:
        build = getattr(module, "build", None)
        if build is not None:
            build(world)

    world.accounts = {Visitor("anonymous").key: None}
    for role in roles.ROLES:
        world.accounts[Visitor("role", role).key] = world.users[role]
        world.accounts[Visitor("disabled", role).key] = world.disabled_users[role]
        world.accounts[Visitor("brand_b", role).key] = world.brand_b_users[role]
    world.clients, world.csrf_clients, world.sessions = {}, {}, {}
    for key, user in world.accounts.items():
        for store, enforce in ((world.clients, False), (world.csrf_clients, True)):
            client = (
                Client(enforce_csrf_checks=enforce)
                if user is None
                else verified_client(user, enforce_csrf_checks=enforce)
            )
            store[key] = client
            morsel = client.cookies.get(settings.SESSION_COOKIE_NAME)
            world.sessions[id(client)] = morsel.value if morsel is not None else None
    return world


_BUILD_FAILURE: list[str] = []


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    # A world that cannot be built fails every test at once, not by building it again for each
    # of two thousand tests.
    if _BUILD_FAILURE:
        pytest.fail(f"The matrix world could not be built: {_BUILD_FAILURE[0]}", pytrace=False)
    # The health page asks Celery workers to answer a ping and waits a second for none: the
    # matrix checks who may see the page, not the workers, so they answer at once here.
    with pytest.MonkeyPatch.context() as patch, django_db_blocker.unblock():
        patch.setattr("backoffice.views._check_workers", lambda: (True, "matrix"))
        with transaction.atomic():
            try:
                built = build_world()
            except Exception as exc:
                _BUILD_FAILURE.append(f"{type(exc).__name__}: {exc}")
                raise
            yield built
            transaction.set_rollback(True)


# --- making a request -------------------------------------------------------------------------


def _request(world, client: Client, user, case: Case, method: str):
    world.visitor = user
    url = reverse(case.url_name, kwargs=case.resolve_kwargs(world)) + case.query
    savepoint = transaction.atomic()
    savepoint._from_testcase = True
    with savepoint:
        if method == "get":
            response = client.get(url)
        else:
            response = client.post(url, case.resolve_post_data(world))
        if response.streaming:
            # Run the export's query inside the savepoint. (The client closes the response
            # itself; closing it again would fire request_finished, which closes a connection
            # found inside a transaction.)
            b"".join(response.streaming_content)
        transaction.set_rollback(True)
    # A logout or a key rotation changed the cookie; the session row itself was rolled back.
    session_key = world.sessions[id(client)]
    client.cookies.pop(settings.SESSION_COOKIE_NAME, None)
    if session_key is not None:
        client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    world.visitor = None
    return url, response


def _is_login_redirect(response) -> bool:
    login = resolve_url(settings.LOGIN_URL)
    return response.status_code == 302 and response["Location"].split("?")[0] == login


def _sees_brand_a(world, user) -> bool:
    ids = brand_ids_for(user)
    return ids is None or world.brand_a.pk in ids


def _expectation(world, case: Case, visitor: Visitor, method: str) -> str:
    if method == "get" and not case.get:
        return "login_or_405" if visitor.kind == "anonymous" else "403_or_405"
    allowed = _allowed(case, method)
    if visitor.kind in ("anonymous", "disabled"):
        return "public" if case.public else "login"
    if visitor.kind == "role":
        return "allowed" if visitor.role in allowed else "forbidden"
    # A brand-B-only user of an allowed role.
    if case.scoped and not _sees_brand_a(world, world.brand_b_users[visitor.role]):
        return "not_found"
    return "allowed"


def _check(expectation: str, response) -> str | None:
    """None when the response meets the expectation, else what was wrong."""
    status = response.status_code
    login = _is_login_redirect(response)
    ok = {
        "login": login,
        "public": status < 500 and not login,
        "allowed": status < 500 and status not in (403, 404) and not login,
        "forbidden": status == 403,
        "not_found": status == 404,
        "login_or_405": login or status == 405,
        "403_or_405": status in (403, 405),
    }[expectation]
    if ok:
        return None
    where = f" → {response['Location']}" if status in (301, 302) else ""
    return f"expected {expectation}, got {status}{where}"


def _run(world, django_db_blocker, index: int, visitor: Visitor, method: str):
    case = CASES[index]
    client = world.clients[visitor.key]
    user = world.accounts[visitor.key]
    expectation = _expectation(world, case, visitor, method)
    with django_db_blocker.unblock():
        url, response = _request(world, client, user, case, method)
    problem = _check(expectation, response)
    assert problem is None, f"{method.upper()} {url} as {visitor.key}: {problem}"


# --- the tests --------------------------------------------------------------------------------


def test_every_url_pattern_has_a_case():
    covered = {case.url_name for case in CASES}
    missing = sorted(
        name if name else f"(unnamed pattern {route!r})"
        for name, route in url_patterns()
        if name not in covered
    )
    assert not missing, "URL patterns without a permission-matrix Case:\n  " + "\n  ".join(missing)


def test_every_case_names_a_url_pattern():
    names = {name for name, _ in url_patterns() if name}
    stale = sorted({case.url_name for case in CASES} - names)
    assert not stale, f"Cases for URL names that do not exist: {stale}"


@pytest.mark.parametrize(("index", "visitor"), _params("get"))
def test_get(world, django_db_blocker, index, visitor):
    _run(world, django_db_blocker, index, visitor, "get")


@pytest.mark.parametrize(("index", "visitor"), _params("post"))
def test_post(world, django_db_blocker, index, visitor):
    _run(world, django_db_blocker, index, visitor, "post")


def _csrf_params() -> list:
    params = []
    for index, case in enumerate(CASES):
        if not case.post:
            continue
        allowed = sorted(_allowed(case, "post"))
        visitor = Visitor("role", allowed[0]) if allowed else Visitor("anonymous")
        params.append(pytest.param(index, visitor, id=f"{_case_id(index, case)}-{visitor.key}"))
    return params


@pytest.mark.parametrize(("index", "visitor"), _csrf_params())
def test_post_without_csrf_token_is_refused(world, django_db_blocker, index, visitor):
    case = CASES[index]
    client = world.csrf_clients[visitor.key]
    with django_db_blocker.unblock():
        world.visitor = world.accounts[visitor.key]
        path = reverse(case.url_name, kwargs=case.resolve_kwargs(world))
        if path.startswith(CSRF_EXEMPT_PREFIXES):
            pytest.skip("webhooks are csrf_exempt by design: PSPs sign them instead")
        url, response = _request(world, client, world.accounts[visitor.key], case, "post")
    assert response.status_code == 403, f"POST {url} without a CSRF token: {response.status_code}"
    assert b"CSRF verification failed" in response.content


def test_requests_left_the_world_as_it_was(world, django_db_blocker):
    """Runs after the matrix (last in this module): no POST leaked out of its savepoint."""
    with django_db_blocker.unblock():
        pending = ApprovalRequest.Status.PENDING
        assert ApprovalRequest.objects.get(pk=world.approval.pk).status == pending
        own = [r.pk for r in world.own_approval.values()]
        assert ApprovalRequest.objects.filter(pk__in=own, status=pending).count() == len(own)
        assert not SavedFilter.objects.filter(name="matrix new").exists()
        assert SavedFilter.objects.filter(
            pk__in=[f.pk for f in world.own_filter.values()]
        ).count() == len(world.own_filter)
