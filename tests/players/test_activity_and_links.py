"""Registration, logins, devices, payment instruments and linked-account detection."""

from datetime import date, timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from players import services
from players.exceptions import InvalidInput
from players.models import Player, PlayerDevice, PlayerLogin, TimelineEvent
from players.selectors import linked_accounts
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


def test_register_player_normalises_and_records(brand_a):
    player = services.do_register_player(
        brand_a,
        external_ref="X-1",
        username="neo",
        email="  Neo@Example.COM ",
        phone="00356 99 12-34-56",
        first_name="Thomas",
        last_name="Anderson",
        country="mt",
        currency="eur",
        ip="10.0.0.1",
        device_id="dev-1",
        affiliate_code="AFF9",
    )
    assert player.email == "neo@example.com"
    assert player.phone == "+35699123456"
    assert (player.country, player.currency) == ("MT", "EUR")
    assert list(TimelineEvent.objects.filter(player=player).values_list("action", flat=True)) == [
        "player.registered"
    ]
    assert PlayerLogin.objects.filter(player=player, ip="10.0.0.1").count() == 1
    assert PlayerDevice.objects.get(player=player).device_id == "dev-1"
    assert player.history.latest().history_change_reason == "Registered"


def test_replayed_registration_fails_on_the_constraint(brand_a):
    kwargs = {
        "external_ref": "X-2", "username": "trinity", "email": "t@x.test", "first_name": "T",
        "last_name": "T", "country": "MT", "currency": "EUR",
    }  # fmt: skip
    services.do_register_player(brand_a, **kwargs)
    with pytest.raises(IntegrityError):
        services.do_register_player(brand_a, **kwargs)


def test_logins_roll_up_devices_and_move_last_activity(player):
    t0 = timezone.now() - timedelta(days=2)
    services.do_record_login(player, ip="10.0.0.1", device_id="d1", occurred_at=t0)
    services.do_record_login(player, ip="10.0.0.2", device_id="d1", occurred_at=t0 + timedelta(1))
    services.do_record_login(player, ip="10.0.0.3", device_id="d2", occurred_at=t0 + timedelta(2))
    services.do_record_login(player, ip="10.0.0.9", device_id="d3", succeeded=False)

    devices = {d.device_id: d for d in PlayerDevice.objects.filter(player=player)}
    assert set(devices) == {"d1", "d2"}  # a failed login does not make a device known
    assert devices["d1"].login_count == 2
    assert devices["d1"].first_seen_at == t0
    assert str(devices["d1"].last_ip) == "10.0.0.2"
    player.refresh_from_db()
    assert player.last_activity_at == t0 + timedelta(2)
    actions = list(
        TimelineEvent.objects.filter(player=player, kind="login")
        .order_by("occurred_at", "id")
        .values_list("action", flat=True)
    )
    assert actions == ["login.new_device", "login.succeeded", "login.new_device", "login.failed"]


def test_an_older_login_does_not_move_last_activity_back(player):
    now = timezone.now()
    services.do_record_login(player, ip="10.0.0.1", occurred_at=now)
    services.do_record_login(player, ip="10.0.0.1", occurred_at=now - timedelta(days=3))
    player.refresh_from_db()
    assert player.last_activity_at == now


def test_instruments_are_recorded_once(player):
    inst, created = services.do_record_instrument(
        player, fingerprint="fp-1", kind="card", label="Visa •••• 4242"
    )
    assert created
    again, created = services.do_record_instrument(
        player, fingerprint="fp-1", kind="card", label="Visa •••• 4242",
        seen_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    assert not created and again.pk == inst.pk
    assert TimelineEvent.objects.filter(player=player, action="instrument.added").count() == 1
    with pytest.raises(InvalidInput):
        services.do_record_instrument(player, fingerprint="", kind="card", label="x")
    with pytest.raises(InvalidInput):
        services.do_record_instrument(player, fingerprint="fp-2", kind="cheque", label="x")


def _reasons(links, player):
    for link in links.visible:
        if link.player.pk == player.pk:
            return link.kinds
    return None


def test_linked_accounts_by_each_reason(brand_a, brand_b, make_staff, player):
    user = make_staff("Risk", brands=[brand_a])
    now = timezone.now()
    same_device = PlayerFactory(brand=brand_a)
    same_ip_close = PlayerFactory(brand=brand_a)
    same_ip_far = PlayerFactory(brand=brand_a)
    same_card = PlayerFactory(brand=brand_a)
    same_email = PlayerFactory(brand=brand_a, email=player.email.upper())
    player.date_of_birth = date(1990, 5, 17)
    player.save()
    same_identity = PlayerFactory(
        brand=brand_a, first_name="MARIA", last_name="rossi", date_of_birth=date(1990, 5, 17)
    )
    twin_elsewhere = PlayerFactory(brand=brand_b, email=player.email)
    stranger = PlayerFactory(brand=brand_a)

    services.do_record_login(player, ip="10.1.1.1", device_id="shared-dev", occurred_at=now)
    services.do_record_login(same_device, ip="10.9.9.9", device_id="shared-dev")
    services.do_record_login(same_ip_close, ip="10.1.1.1", occurred_at=now - timedelta(minutes=40))
    services.do_record_login(same_ip_far, ip="10.1.1.1", occurred_at=now - timedelta(hours=3))
    services.do_record_instrument(player, fingerprint="card-fp", kind="card", label="Visa 1")
    services.do_record_instrument(same_card, fingerprint="card-fp", kind="card", label="Visa 1")
    services.do_record_login(stranger, ip="10.2.2.2", device_id="other-dev")

    links = linked_accounts(player, user)
    assert _reasons(links, same_device) == {"device"}
    assert _reasons(links, same_ip_close) == {"ip"}
    assert _reasons(links, same_ip_far) is None
    assert _reasons(links, same_card) == {"instrument"}
    assert _reasons(links, same_email) == {"email"}
    assert _reasons(links, same_identity) == {"identity"}
    assert _reasons(links, stranger) is None
    assert _reasons(links, twin_elsewhere) is None  # brand B is outside the user's scope
    assert links.hidden_count == 1
    ip_link = next(lk for lk in links.visible if lk.player.pk == same_ip_close.pk)
    assert ip_link.reasons == ["Same IP 10.1.1.1 within 1 h"]


def test_linked_accounts_run_two_queries(player, make_staff, django_assert_num_queries):
    user = make_staff("Risk")
    other = PlayerFactory(brand=player.brand)
    services.do_record_login(player, ip="10.1.1.1", device_id="dev")
    services.do_record_login(other, ip="10.1.1.1", device_id="dev")
    user.get_all_permissions()
    Player.objects.in_brands(user)  # warm the brand cache
    from backoffice.scoping import brand_ids_for

    brand_ids_for(user)
    with django_assert_num_queries(2):
        links = linked_accounts(player, user)
    assert _reasons(links, other) == {"device", "ip"}
