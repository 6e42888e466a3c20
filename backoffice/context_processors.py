from django.conf import settings

from .navigation import menu_for


def shell(request):
    """What base.html needs on every page: environment label, menu, the user's brands."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"environment_name": settings.ENVIRONMENT_NAME}
    from .cached_choices import cached_objects
    from .models import Brand

    return {
        "environment_name": settings.ENVIRONMENT_NAME,
        "menu": lambda: menu_for(user),
        "user_brands": lambda: [
            b.name for b in cached_objects(Brand.objects.in_brands(user).order_by("name"))
        ],
    }
