import factory
from django.utils import timezone

from support.models import SLA_BY_PRIORITY, Macro, Ticket

from .players import PlayerFactory


class TicketFactory(factory.django.DjangoModelFactory):
    """A ticket written straight to the table (tests of services use the services)."""

    class Meta:
        model = Ticket

    player = factory.SubFactory(PlayerFactory)
    brand = factory.SelfAttribute("player.brand")
    subject = factory.Sequence(lambda n: f"Question {n}")
    category = Ticket.Category.WITHDRAWAL
    priority = Ticket.Priority.NORMAL
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.SelfAttribute("created_at")
    sla_due_at = factory.LazyAttribute(lambda o: o.created_at + SLA_BY_PRIORITY[o.priority])


class MacroFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Macro
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Macro {n}")
    body = "Thanks for your patience, we are on it."
