"""`manage.py seed_roles [--reset]`: create the standard roles with their default permissions."""

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand

from backoffice import roles
from backoffice.staff_services import ensure_roles


class Command(BaseCommand):
    help = (
        "Create the standard roles (Support, Payments, …, Admin, Auditor) that do not exist yet, "
        "with their default permissions. Existing roles keep what admins made of them unless "
        "--reset is given. Safe to run on every deploy."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Also put existing roles back to their default permissions (audited).",
        )

    def handle(self, *args, reset: bool = False, **options):
        before = set(Group.objects.values_list("name", flat=True))
        groups = ensure_roles(reset=reset)
        for group in groups:
            count = group.permissions.count()
            if group.name not in before:
                state = "created"
            elif reset:
                state = "reset"
            else:
                state = "kept"
            self.stdout.write(f"{group.name:<16} {state:<8} {count:>3} permissions")
        missing = sorted(
            p for name in roles.ROLES for p in roles.ROLE_PERMISSIONS[name] if not _exists(p)
        )
        if missing:
            self.stderr.write(
                "These default permissions do not exist (migrate first?): " + ", ".join(missing)
            )
        self.stdout.write(self.style.SUCCESS(f"{len(groups)} roles in place."))


def _exists(name: str) -> bool:
    app_label, codename = name.split(".", 1)
    return Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists()
