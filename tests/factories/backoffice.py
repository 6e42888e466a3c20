import factory

from backoffice.models import Brand, User


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"brand{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())
    jurisdiction = "MT"
    default_currency = "EUR"


class StaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.test")
    first_name = "Test"
    last_name = factory.LazyAttribute(lambda o: o.username.title())
    password = factory.django.Password("correct-horse-battery")
    must_enrol_otp = False
