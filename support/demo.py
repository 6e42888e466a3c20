"""The support desk of the demo casino: macros, a few hundred tickets across the queues, and
the stories planted among them.

Stories: a player asking where their withdrawal is (linked to a payout the PSP has not
confirmed, when the payments demo made one), a disputed game round waiting for Compliance's
decision, the self-excluded player asking to lift the exclusion early, and urgent tickets past
their SLA. The rest are ordinary questions spread over the last ten days, in every status,
priority and team, some claimed, some not.

Deterministic (`ctx.rng_for("support")`, dates from `ctx.now`) and idempotent (a second run
finds the tickets and writes nothing). Rows go in with bulk inserts, history rows included.
"""

from __future__ import annotations

from datetime import timedelta

from django.apps import apps
from simple_history.utils import bulk_create_with_history

from backoffice import roles
from backoffice.money import format_money
from players import timeline
from players.demo import DEMO_PREFIX, story_player
from players.models import Player

from .models import SLA_BY_PRIORITY, Macro, Priority, Status, Ticket, TicketNote
from .services import NOTE_VISIBILITY, TICKET_VISIBILITY

Category = Ticket.Category

MACROS = [
    # name, note kind, body, set_status, resolution, priority, team
    ("Ask for proof of address", "reply",
     "Hello, to finish verifying your account please upload a utility bill or bank statement "
     "from the last three months in Account › Documents. Thank you!",
     Status.PENDING_PLAYER, "", "", ""),
    ("Withdrawal timing explained", "reply",
     "Your withdrawal has been approved on our side. Card payouts take 1–3 banking days to "
     "arrive; e-wallets usually a few hours. We will keep an eye on it for you.",
     Status.PENDING_PLAYER, "", "", ""),
    ("Escalate to payments", "internal",
     "Needs a payments check: PSP status, trace or reference. Routed to Payments.",
     Status.PENDING_INTERNAL, "", "", "Payments"),
    ("Bonus terms answered", "reply",
     "The bonus needs to be wagered 35 times before it turns into cash; slots count 100%, "
     "table games 10%. You can follow the progress in My bonuses.",
     Status.RESOLVED, "answered", "", ""),
    ("Close: no answer from player", "internal",
     "No answer from the player after two reminders; closing. The player can reopen by writing.",
     Status.CLOSED, "no_response", "", ""),
    ("Game round check", "internal",
     "Asked the provider for the round log. Routed to Game operations.",
     Status.PENDING_INTERNAL, "", "high", "Game operations"),
]  # fmt: skip

SUBJECTS = {
    Category.DEPOSIT: ("Deposit not showing in my balance", "Card deposit declined",
                       "Charged twice for one deposit"),
    Category.WITHDRAWAL: ("When will my withdrawal arrive?", "Withdrawal cancelled without reason",
                          "Can I withdraw to a different card?"),
    Category.BONUS: ("Welcome bonus not credited", "How much wagering is left?",
                     "Free spins disappeared"),
    Category.GAME: ("Game froze during a spin", "Live table disconnected mid-hand",
                    "Jackpot amount looks wrong"),
    Category.ACCOUNT: ("Cannot log in", "Change my email address", "Please close my account"),
    Category.VERIFICATION: ("Why do you need my documents?", "Document rejected",
                            "Verification taking too long"),
    Category.RESPONSIBLE_GAMBLING: ("I want to set a deposit limit", "Take a break for a week"),
    Category.COMPLAINT: ("Unhappy with the support I got", "Promotion terms are misleading"),
    Category.TECHNICAL: ("App crashes on start", "Page does not load on Safari"),
}  # fmt: skip
TEAM_FOR = {
    Category.DEPOSIT: "Payments", Category.WITHDRAWAL: "Payments", Category.GAME: "Support",
    Category.VERIFICATION: "Compliance", Category.RESPONSIBLE_GAMBLING: "Compliance",
}  # fmt: skip
STATUS_WEIGHTS = [
    (Status.NEW, 20), (Status.OPEN, 25), (Status.PENDING_PLAYER, 15),
    (Status.PENDING_INTERNAL, 10), (Status.RESOLVED, 15), (Status.CLOSED, 15),
]  # fmt: skip
PRIORITY_WEIGHTS = [(Priority.LOW, 15), (Priority.NORMAL, 55), (Priority.HIGH, 22),
                    (Priority.URGENT, 8)]  # fmt: skip
REPLIES = (
    "Thanks for reaching out, we are looking into it and will come back to you today.",
    "We checked with the team: everything looks right on our side. Could you send a screenshot?",
    "Sorry for the trouble. This is fixed now; please try again.",
)
INTERNAL = (
    "Checked the player's last payments and sessions; nothing unusual.",
    "Asked the PSP for a trace.",
    "Player is polite but in a hurry; keep them posted.",
)


def _pick(rng, pairs):
    return rng.choices([v for v, _ in pairs], weights=[w for _, w in pairs])[0]


def _ensure_macros() -> None:
    for name, kind, body, status, code, priority, team in MACROS:
        if Macro.objects.filter(name=name).exists():
            continue
        macro = Macro(name=name, note_kind=kind, body=body, set_status=status,
                      set_resolution_code=code, set_priority=priority, set_team=team)  # fmt: skip
        macro._change_reason = "Demo casino"
        macro.save()


class DeskBuilder:
    def __init__(self, ctx, rng):
        self.ctx = ctx
        self.rng = rng
        self.tickets: list[Ticket] = []
        self.notes: list[tuple[int, TicketNote]] = []  # (ticket index, note)
        self.events: list[dict] = []

    def staff_for(self, team: str):
        return self.ctx.staff.get(team) or self.ctx.staff.get(roles.SUPPORT)

    def add(self, player: Player, *, subject, category, priority, status, created_at,
            description="", team=None, assigned=None, dispute_outcome="", link=("", ""),
            notes=(), channel=None) -> Ticket:  # fmt: skip
        rng = self.rng
        team = team or TEAM_FOR.get(category, roles.SUPPORT)
        if assigned is None:
            assigned = status != Status.NEW and rng.random() < 0.85
        assignee = self.staff_for(team) if assigned else None
        ticket = Ticket(
            brand_id=player.brand_id, player=player, subject=subject, description=description,
            category=category, priority=priority, status=status, team=team, assignee=assignee,
            channel=channel or rng.choice(Ticket.Channel.values[:3]), created_at=created_at,
            updated_at=created_at, sla_due_at=created_at + SLA_BY_PRIORITY[priority],
            object_type=link[0], object_id=str(link[1]), is_dispute=bool(dispute_outcome),
            dispute_outcome=dispute_outcome,
        )  # fmt: skip
        if status in (Status.RESOLVED, Status.CLOSED):
            ticket.resolution_code = rng.choice(("answered", "fixed", "no_action", "refunded"))
            ticket.resolved_at = min(created_at + timedelta(hours=rng.randint(1, 30)), self.ctx.now)
            ticket.updated_at = ticket.resolved_at
            if status == Status.CLOSED:
                ticket.closed_at = ticket.resolved_at
        index = len(self.tickets)
        self.tickets.append(ticket)
        author = assignee or self.ctx.staff.get(roles.SUPPORT)
        for offset, (kind, body) in enumerate(notes):
            at = min(created_at + timedelta(minutes=20 + 45 * offset), self.ctx.now)
            self.notes.append((index, TicketNote(brand_id=player.brand_id, kind=kind, body=body,
                                                 author=author, created_at=at)))  # fmt: skip
            ticket.updated_at = max(ticket.updated_at, at)
        return ticket

    def ordinary(self, players: list[Player], count: int) -> None:
        rng, now = self.rng, self.ctx.now
        for _ in range(count):
            player = rng.choice(players)
            category = rng.choice(list(SUBJECTS))
            status = _pick(rng, STATUS_WEIGHTS)
            priority = _pick(rng, PRIORITY_WEIGHTS)
            sla_minutes = int(SLA_BY_PRIORITY[priority].total_seconds() // 60)
            if status in (Status.NEW, Status.OPEN, Status.PENDING_INTERNAL) and rng.random() < 0.85:
                # Most tickets being worked are inside their SLA; the rest are the overdue queue.
                created = now - timedelta(minutes=rng.randint(5, max(6, int(sla_minutes * 0.9))))
            else:
                created = now - timedelta(minutes=rng.randint(10, 10 * 24 * 60))
            notes = []
            if status != Status.NEW:
                notes.append(("reply", rng.choice(REPLIES)))
                if rng.random() < 0.5:
                    notes.append(("internal", rng.choice(INTERNAL)))
            outcome = ""
            if (
                category in (Category.GAME, Category.DEPOSIT, Category.BONUS)
                and rng.random() < 0.08
            ):
                outcome = "pending" if status not in (Status.RESOLVED, Status.CLOSED) else (
                    rng.choice(("upheld", "rejected", "partially_upheld"))
                )  # fmt: skip
            self.add(player, subject=rng.choice(SUBJECTS[category]), category=category,
                     priority=priority, status=status, created_at=created,
                     description="Message from the player: " + rng.choice(SUBJECTS[category]) + ".",
                     dispute_outcome=outcome, notes=notes)  # fmt: skip


def _asked_about_payout(player_ref: str):
    """The withdrawal the "where is my money" player asks about, if the payments demo made
    one: the story player's latest withdrawal (held for review: a new bank account), else a
    payout the PSP never confirmed. Returns (player, withdrawal) or (None, None)."""
    try:
        withdrawal_model = apps.get_model("payments", "Withdrawal")
    except LookupError:
        return None, None
    qs = withdrawal_model.objects.select_related("player", "player__brand")
    asked = qs.filter(player__external_ref=player_ref).order_by("-id").first()
    if asked is None:
        asked = (
            qs.filter(status="sent_to_psp", player__external_ref__startswith=DEMO_PREFIX)
            .order_by("id")
            .first()
        )
    return (asked.player, asked) if asked is not None else (None, None)


WAITING_WORDS = {
    "requested": "it still says requested",
    "in_review": "it still says in review",
    "approved": "it says approved",
    "sent_to_psp": "your site says it was sent",
}


def seed(ctx) -> None:
    """Write the demo support desk (see the module docstring). Idempotent."""
    _ensure_macros()
    if Ticket.objects.exists():
        ctx.log("  tickets already there")
        return
    rng, now = ctx.rng_for("support"), ctx.now
    players = list(
        Player.objects.filter(external_ref__startswith=DEMO_PREFIX, status="active")
        .select_related("brand")
        .order_by("id")[:5000]
    )
    if not players:
        ctx.log("  no demo players: no tickets")
        return
    desk = DeskBuilder(ctx, rng)

    # Where is my money?
    player, payout = _asked_about_payout("demo-story-where-is-my-money")
    if player is None:
        player = story_player("demo-story-where-is-my-money") or players[0]
    if payout is not None:
        amount = format_money(payout.amount, payout.currency_id)
        state = WAITING_WORDS.get(payout.status, "it has not arrived")
    else:
        amount, state = "my winnings", "it has not arrived"
    desk.add(
        player, subject="Where is my money?", category=Category.WITHDRAWAL,
        priority=Priority.HIGH, status=Status.NEW, assigned=False, channel="chat",
        created_at=now - timedelta(hours=4, minutes=30),
        description=f"I asked to withdraw {amount} this morning and {state}. I need this money "
        "for rent. Where is my money?",
        link=("payments.withdrawal", payout.pk) if payout is not None else ("", ""),
    )  # fmt: skip

    # A disputed game round, waiting for Compliance.
    vip = story_player("demo-story-vip") or players[-1]
    desk.add(
        vip, subject="Bonus round froze — 480 EUR win not paid", category=Category.GAME,
        priority=Priority.URGENT, status=Status.PENDING_INTERNAL, team="Game operations",
        assigned=True, created_at=now - timedelta(days=1, hours=3), dispute_outcome="pending",
        description="The free spins round froze on spin 7 with 480 EUR on screen. When the game "
        "came back my balance had not changed. I want the win paid.",
        notes=[("reply", "We have asked the game provider for the round log."),
               ("internal", "Provider ticket opened; round id in their back office.")],
    )  # fmt: skip

    # The self-excluded player wants back in early.
    excluded = story_player("demo-story-excluded")
    if excluded is not None:
        desk.add(
            excluded, subject="Lift my self-exclusion early",
            category=Category.RESPONSIBLE_GAMBLING, priority=Priority.NORMAL, status=Status.OPEN,
            team="Compliance", assigned=True,
            created_at=now - timedelta(hours=20),
            description="I feel fine now and want to play again. Can you lift my exclusion?",
            notes=[("internal", "Exclusion runs 12 months; cannot be lifted early. Check for "
                                "accounts on our other brands.")],
        )  # fmt: skip

    # Urgent ones past their SLA.
    for hours in (3, 9, 30):
        desk.add(
            rng.choice(players), subject="Account locked after password reset",
            category=Category.ACCOUNT, priority=Priority.URGENT, status=Status.OPEN,
            assigned=True, created_at=now - timedelta(hours=hours),
            notes=[("reply", "We are unlocking it now.")],
        )  # fmt: skip

    desk.ordinary(players, max(20, min(ctx.players // 25, 2000)))

    seeder = ctx.staff.get(roles.SUPPORT)
    bulk_create_with_history(
        desk.tickets, Ticket, batch_size=1000, default_user=seeder,
        default_change_reason="Demo casino", default_date=now,
    )  # fmt: skip
    for index, note in desk.notes:
        note.ticket = desk.tickets[index]
    bulk_create_with_history(
        [n for _, n in desk.notes], TicketNote, batch_size=2000, default_user=seeder,
        default_change_reason="Demo casino", default_date=now,
    )  # fmt: skip
    events = []
    for ticket in desk.tickets:
        events.append({
            "player": ticket.player, "kind": "ticket", "action": "ticket.opened",
            "summary": f"Ticket #{ticket.pk}: opened — {ticket.subject}", "subject": ticket,
            "actor_label": "platform", "occurred_at": ticket.created_at,
            "visibility": TICKET_VISIBILITY,
        })  # fmt: skip
    for _, note in desk.notes:
        events.append({
            "player": note.ticket.player, "kind": "ticket",
            "action": "ticket.replied" if note.kind == "reply" else "ticket.note_added",
            "summary": f"Ticket #{note.ticket.pk}: {'reply' if note.kind == 'reply' else 'note'}"
            f" — {note.body}", "subject": note.ticket, "actor": note.author,
            "occurred_at": note.created_at, "visibility": NOTE_VISIBILITY,
        })  # fmt: skip
    timeline.record_many(events)
    ctx.log(f"  {len(desk.tickets):,} tickets, {len(desk.notes):,} notes, {len(MACROS)} macros")
