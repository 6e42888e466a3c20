import factory

from players.models import NoteReason, Player, PlayerNote, Tag, TimelineEvent

from .backoffice import BrandFactory


class PlayerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Player

    brand = factory.SubFactory(BrandFactory)
    external_ref = factory.Sequence(lambda n: f"P{n:07d}")
    username = factory.Sequence(lambda n: f"player{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@mail.test")
    phone = factory.Sequence(lambda n: f"+3569{n:07d}")
    first_name = "Alex"
    last_name = factory.Sequence(lambda n: f"Player{n}")
    country = "MT"
    currency = "EUR"


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag-{n}")
    colour = Tag.Colour.BLUE


class NoteReasonFactory(factory.django.DjangoModelFactory):
    """Reason codes are seeded by a migration; this makes extra ones for tests."""

    class Meta:
        model = NoteReason
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"reason-{n}")
    label = factory.LazyAttribute(lambda o: o.code.replace("-", " ").title())
    category = NoteReason.Category.GENERAL
    template = ""


class PlayerNoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlayerNote

    player = factory.SubFactory(PlayerFactory)
    brand = factory.SelfAttribute("player.brand")
    reason = factory.SubFactory(NoteReasonFactory)
    category = factory.SelfAttribute("reason.category")
    body = "Spoke to the player."


class TimelineEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TimelineEvent

    player = factory.SubFactory(PlayerFactory)
    brand = factory.SelfAttribute("player.brand")
    kind = "account"
    action = "test.event"
    summary = factory.Sequence(lambda n: f"Event {n}")
    actor_label = "system"
