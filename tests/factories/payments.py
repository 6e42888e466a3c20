import factory

from payments.models import PaymentMethod, Psp

from .backoffice import BrandFactory


class PspFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Psp
        django_get_or_create = ("code",)

    brand = factory.SubFactory(BrandFactory)
    code = factory.Sequence(lambda n: f"cardpay-{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("-", " ").title())
    adapter = "cardpay"
    signing_keys = factory.LazyAttribute(lambda o: {"current": f"whsec-{o.code}-0123456789abcdef"})


class PaymentMethodFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentMethod
        django_get_or_create = ("psp", "kind", "country", "currency_id")

    psp = factory.SubFactory(PspFactory)
    brand = factory.LazyAttribute(lambda o: o.psp.brand)
    kind = PaymentMethod.Kind.CARD
    country = ""
    currency_id = "EUR"
