"""A provider's referral feed: positions, the cursor, and what each change writes.

Every change to a referral (its offer, every move) is announced by the case
services (``cases.events``); this module listens (``into_the_feed``). Each
change takes the next *position* of the referral's provider and writes, in
the same transaction as the change: the referral's feed entry (its latest
position) and, when the provider has a webhook endpoint and the change is
news rather than imported history, a delivery in the outbox, and a
delivery round queued for once the transaction commits.

Why a per-provider counter row, and not a timestamp or a database sequence:
a feed read by "everything after the last position I saw" skips a change
when two transactions take positions 5 and 6 and 6 commits first (the
reader sees 6, moves its cursor past 5, and 5 appears later behind it).
Taking a position here is an UPDATE of the provider's counter row, and its
row lock is held until the transaction ends, so the next position cannot
be taken until the previous one is committed or rolled back: a provider's
positions become visible in their own order. The reader also stops at the
counter's committed value (the *high-water mark*) read before it looks at
the entries, so a page never includes a position while a lower one could
still appear. A rolled-back change leaves a gap, which is harmless.

The cost is that changes to one provider's referrals, across all its
forces, commit one at a time (a short wait each; a long import holds the
row for its whole transaction). SQLite allows one writer at a time anyway.
A request changes one referral, so holds one counter; two long
transactions that each change referrals of several providers (imports,
the expiry command) can deadlock on PostgreSQL, which then aborts one of
them whole, to be run again.

The cursor is opaque to clients: ``base64url("v1:<position>")``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from diversion.accounts.access import Action, require, user_id_of
from diversion.audit.services import record
from diversion.cases.events import Moved, referrals_moved
from diversion.cases.models import Encounter, Referral
from diversion.catalogue.models import Provider
from diversion.db import among, new_id, utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.providers.models import FeedCounter, FeedEntry, WebhookDelivery
from diversion.providers.webhooks import WebhookError, endpoint_of, wake
from diversion.tenancy.bulk import carrying_queued_rows, insert_object, insert_rows
from diversion.tenancy.context import acting_for_provider, current_scope, require_tenant_id
from diversion.tenancy.models import Tenant

if TYPE_CHECKING:
    from diversion.accounts.access import Actor

CURSOR_VERSION = "v1"
CREATED = "referral.created"
CHANGED = "referral.changed"
TEST = "webhook.test"  # sent when a provider admin asks, to try their endpoint
EVENTS = (CREATED, CHANGED)


class CursorError(FieldError):
    """A cursor this feed did not give out."""


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_VERSION}:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The position a cursor stands for; no cursor is the start of the feed.

    Refuses (``CursorError``) anything the feed did not give out.
    """
    if cursor is None or cursor == "":
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    version, _colon, number = raw.partition(":")
    if (version != CURSOR_VERSION or not number.isascii() or not number.isdigit() or len(number) > 18
            or encode_cursor(int(number)) != cursor):  # only the exact text the feed gave out
        raise CursorError("cursor", _("This is not a cursor the feed gave out: start again without one, "
                                        "or use next_cursor from the last page."))
    return int(number)


def high_water(provider_id: int) -> int:
    """The provider's last committed position: every lower one is settled."""
    return int(db.session.scalar(
        select(FeedCounter.last_position).where(FeedCounter.provider_id == provider_id)) or 0)


# A provider's next positions taken: its counter moved on by ``count``.
_TAKING = (update(FeedCounter).where(FeedCounter.provider_id == bindparam("provider"))
           .values(last_position=FeedCounter.last_position + bindparam("count")))
# It reads the counters alone, so the rows the change queued (its referral, its audit event) go with it.
_TAKE_POSITIONS = carrying_queued_rows(_TAKING.returning(FeedCounter.last_position, FeedCounter.webhooks)
                                       .execution_options(synchronize_session=False))
# A new referral's position taken and its entry written, in one statement (with the queued rows, as
# above): the offer of a place, the change a request makes most.
_TAKEN = _TAKING.returning(FeedCounter.provider_id, FeedCounter.last_position, FeedCounter.webhooks).cte("taken")
_ENTRY = FeedEntry.__table__.c
_ENTERED = insert(FeedEntry).from_select(
    ["referral_id", "provider_id", "position", "changed_at", "id", "tenant_id"],
    select(bindparam("referral_id", type_=_ENTRY.referral_id.type), _TAKEN.c.provider_id, _TAKEN.c.last_position,
           *(bindparam(name, type_=_ENTRY[name].type) for name in ("changed_at", "id", "tenant_id"))))
_TAKE_AND_ENTER = carrying_queued_rows(select(_TAKEN.c.last_position, _TAKEN.c.webhooks)
                                       .add_cte(_ENTERED.cte("entered")))


def next_position(provider_id: int, count: int = 1, *, entering: uuid.UUID | None = None) -> tuple[int, bool]:
    """Take the provider's next ``count`` positions, returning the last and whether the
    provider wants webhooks; the counter row stays locked until the transaction ends.
    ``entering``: a new referral of the force in scope (``count`` is one), whose feed entry is
    written with its position (in the same statement, on PostgreSQL)."""
    if entering is not None and count != 1:
        raise ValueError("One referral enters the feed at a time.")
    together = entering is not None and db.session.get_bind().dialect.name == "postgresql"
    values: dict[str, Any] = {"provider": provider_id, "count": count}
    if together:
        values |= {"referral_id": entering, "changed_at": utcnow(), "id": new_id(), "tenant_id": require_tenant_id()}

    def take() -> Any:
        return db.session.execute(_TAKE_AND_ENTER if together else _TAKE_POSITIONS, values)

    taken = take().first()
    if taken is None:  # the provider's first change: make its counter (once, even when two race)
        try:
            with db.session.begin_nested():
                db.session.add(FeedCounter(provider_id=provider_id, last_position=0))
        except IntegrityError:
            pass
        taken = take().one()
    if entering is not None and not together:
        insert_object(db.session, FeedEntry(referral_id=entering, provider_id=provider_id, position=taken[0]))
    return int(taken[0]), bool(taken[1])


def _body(delivery_id: uuid.UUID, event: str, tenant: Tenant, move: Moved, *, position: int,
          reference: str) -> str:
    """What a delivery sends: which referral (and case reference) changed and how, never anything
    about the person."""
    data: dict[str, Any] = {
        "id": str(delivery_id),
        "type": event,
        "created_at": utcnow().isoformat().replace("+00:00", "Z"),
        "data": {
            "referral_id": str(move.referral_id),
            "reference": reference,
            "force": tenant.slug,
            "state": move.to.value,
            "previous_state": move.came_from.value if move.came_from else None,
            "transition_id": str(move.transition_id),
            "occurred_at": move.occurred_at.isoformat().replace("+00:00", "Z"),
            "cursor": encode_cursor(position),
        },
    }
    return json.dumps(data, separators=(",", ":"))


@referrals_moved.connect
def into_the_feed(tenant: Tenant, *, moves: Sequence[Moved], history: bool) -> None:
    """Listener of referral moves (``cases.events``): each moved referral takes the
    next position in its provider's feed and, unless the moves are history, a
    delivery goes in the outbox for a provider with a webhook endpoint; in the
    caller's transaction, with the referral's force in scope.

    A batch takes each provider's positions at once, in the order of its moves.
    """
    by_provider: dict[int, list[Moved]] = {}
    for move in moves:
        by_provider.setdefault(move.provider_id, []).append(move)
    for provider_id, theirs in sorted(by_provider.items()):
        # A new referral (an offer: no earlier state) has no entry yet; others may.
        moved_before = [m.referral_id for m in theirs if m.came_from is not None]
        entering = theirs[0].referral_id if (not history and len(theirs) == 1 and not moved_before
                                             and current_scope().provider_id is None) else None
        last, webhooks = next_position(provider_id, len(theirs), entering=entering)
        positions = dict(zip((m.referral_id for m in theirs), range(last - len(theirs) + 1, last + 1), strict=True))
        existing = {entry.referral_id: entry for entry in db.session.scalars(
            select(FeedEntry).where(among(FeedEntry.referral_id, moved_before, db.session.get_bind().dialect)))
        } if moved_before else {}
        entries = [{"referral_id": referral_id, "provider_id": provider_id, "position": position}
                   for referral_id, position in positions.items()
                   if referral_id not in existing and referral_id != entering]
        if history:  # an import's thousands at once, on the bulk path
            insert_rows(db.session, FeedEntry, entries)
        else:
            for values in entries:
                insert_object(db.session, FeedEntry(tenant_id=tenant.id, **values))
        for referral_id, entry in existing.items():
            entry.position, entry.provider_id, entry.changed_at = positions[referral_id], provider_id, utcnow()
        if not history and webhooks:
            wake(provider_id)
            # The moved referrals' case references, in one read.
            references = dict(db.session.execute(
                select(Referral.id, Encounter.reference)
                .join(Encounter, (Encounter.tenant_id == Referral.tenant_id) & (Encounter.id == Referral.encounter_id))
                .where(Referral.id.in_(positions))).tuples().all())
            for move in theirs:
                delivery_id = new_id()
                event = CREATED if move.came_from is None else CHANGED
                db.session.add(WebhookDelivery(
                    id=delivery_id, tenant_id=tenant.id, provider_id=provider_id, referral_id=move.referral_id,
                    event=event, body=_body(delivery_id, event, tenant, move, position=positions[move.referral_id],
                                            reference=references.get(move.referral_id, "")),
                    next_attempt_at=utcnow()))
    db.session.flush()


def queue_test_event(provider: Provider, *, actor: Actor) -> WebhookDelivery:
    """Queue a test delivery to the provider's endpoint, sent as every delivery is
    (``webhooks.deliver_due``: signed, through the outbound rules, retried) and
    listed with them. It is a ``webhook.test`` event about the referral the
    provider's feed changed last, as it is now, and moves nothing.

    Refuses an actor who may not manage the provider's webhook (``AccessRefused``),
    a provider with no endpoint, and one with no referral yet (``WebhookError``).
    Runs in the provider's scope (the integration pages').
    """
    require(actor, Action.MANAGE_WEBHOOK, provider_id=provider.id)
    if endpoint_of(provider) is None:
        raise WebhookError("webhook", _("Save your endpoint's address first: a test event goes to it."))
    latest = db.session.execute(
        select(FeedEntry.tenant_id, FeedEntry.referral_id, FeedEntry.position)
        .where(FeedEntry.provider_id == provider.id).order_by(FeedEntry.position.desc()).limit(1)).first()
    if latest is None:
        raise WebhookError("webhook", _("A test event names one of your referrals, and no force has sent "
                                        "%(provider)s a referral yet.", provider=provider.name))
    tenant_id, referral_id, position = latest
    with acting_for_provider(provider.id, tenant_id, user_id_of(actor)):
        tenant = db.session.get(Tenant, tenant_id)
        referral = db.session.get(Referral, referral_id)
        step = referral.transitions[-1] if referral is not None and referral.steps else None
        if tenant is None or referral is None or step is None:  # the feed entry's foreign key rules it out
            raise WebhookError("webhook", _("The referral of the test event is not there any more: try again."))
        delivery_id = new_id()
        move = Moved(referral.id, provider.id, referral.pathway, step.from_state, step.to_state, step.id,
                     step.occurred_at)
        delivery = WebhookDelivery(id=delivery_id, tenant_id=tenant.id, provider_id=provider.id,
                                   referral_id=referral.id, event=TEST,
                                   body=_body(delivery_id, TEST, tenant, move, position=position,
                                              reference=db.session.scalar(select(Encounter.reference).where(
                                                  Encounter.id == referral.encounter_id)) or ""),
                                   next_attempt_at=utcnow())
        db.session.add(delivery)
        db.session.flush()
    record("provider_webhook.test_queued", actor=actor, tenant_id=None, object_type="provider_webhook",
           object_id=provider.id, details={"provider": provider.slug, "delivery": str(delivery_id)})
    wake(provider.id)
    return delivery
