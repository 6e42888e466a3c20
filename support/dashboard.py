"""Support queues on the home page: unassigned, mine, overdue, disputes."""

from backoffice.dashboard import QueueCounter, register_counter

from .selectors import count_label, queue_counts


def _count(user, key: str) -> str:
    # The four counters share one aggregate query per page.
    counts = getattr(user, "_support_home_counts", None)
    if counts is None:
        counts = user._support_home_counts = queue_counts(user)
    return count_label(counts[key])  # bounded: "999+" past the limit


for _order, (_key, _label, _help) in enumerate(
    [
        ("unassigned", "Unassigned tickets", "Open tickets nobody has claimed."),
        ("mine", "My tickets", "Open tickets assigned to you."),
        ("overdue", "Overdue tickets", "Past their SLA, not waiting on the player."),
        ("disputes", "Open disputes", "Tickets disputing a payment, round or bonus."),
    ]
):
    register_counter(
        QueueCounter(
            key=f"tickets_{_key}",
            label=_label,
            permission="support.view_ticket",
            count=lambda user, key=_key: _count(user, key),
            url_name="support:ticket_list",
            query=f"queue={_key}",
            help=_help,
            order=20 + _order,
        )
    )
