import factory

from players.models import Player

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
