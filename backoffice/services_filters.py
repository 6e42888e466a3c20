"""Writes for saved filters."""

from django.db import transaction

from .models import SavedFilter


@transaction.atomic
def do_save_filter(*, acting_user, list_name: str, name: str, query: str) -> SavedFilter:
    """Create or overwrite the user's saved filter of that name on that list."""
    saved, _ = SavedFilter.objects.update_or_create(
        user=acting_user, list_name=list_name, name=name, defaults={"query": query}
    )
    return saved


@transaction.atomic
def do_delete_saved_filter(saved: SavedFilter, *, acting_user) -> None:
    if saved.user_id != acting_user.pk:
        raise PermissionError("Not your saved filter.")
    saved._history_user = acting_user
    saved.delete()
