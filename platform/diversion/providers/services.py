"""Provider services: one provider's referrals across forces (for its workspace, its API and
its feed), and its part of their lifecycle.

Every function here runs in the provider's scope (``tenancy.context``:
``provider_scoped`` or ``set_provider_scope``): the ORM guard and row-level
security then let through only the provider's referrals and the rows
hanging off them, in every force it serves. A change is made through the
force's own lifecycle services (``cases.services``) with the referral's
force *added* to the scope (``acting_for_provider``), never in place of the
provider. Every view and change is audited under the referral's force.

Services validate, ``flush()`` and never commit. Refusals are
``ProviderError`` naming the field at fault.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import select

from diversion.accounts.access import Action, require
from diversion.accounts.models import ProviderMembership, User
from diversion.audit.services import record
from diversion.cases import rules
from diversion.cases import services as cases
from diversion.cases.identity import Contact, Identity, Unreadable, open_contact, open_identity
from diversion.cases.models import BookedSession, Encounter, Person, Referral, State, Transition, Why
from diversion.catalogue.models import Course, Offering, Provider
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.jsonapi.tokens import ProviderToken
from diversion.providers.models import FeedEntry
from diversion.tenancy.context import acting_for_provider, current_provider_id, current_scope, provider_scoped
from diversion.tenancy.guard import OutsideProviderScope
from diversion.tenancy.models import Tenant

# What a provider may do to a referral; withdrawing it is the force's decision.
PROVIDER_MOVES = (State.ACCEPTED, State.DECLINED, State.BOOKED, State.ATTENDED, State.MISSED, State.COMPLETED,
                  State.NOT_COMPLETED)


class ProviderError(FieldError):
    """A refused change in the provider workspace."""


class MoveError(FieldError):
    """A referral move the lifecycle does not allow from where the referral is now."""


def providers_of(user: User) -> list[Provider]:
    """The providers the user works for, by name (provider memberships are global rows)."""
    return list(db.session.scalars(
        select(Provider).join(ProviderMembership, ProviderMembership.provider_id == Provider.id)
        .where(ProviderMembership.user_id == user.id).order_by(Provider.name)))


def _require_scope(provider: Provider) -> None:
    if current_provider_id() != provider.id:
        raise OutsideProviderScope(f"{provider.name}'s work needs its provider scope.")


def forces_served(provider: Provider) -> list[Tenant]:
    """The forces that offer one of the provider's courses, by name."""
    _require_scope(provider)
    return list(db.session.scalars(
        select(Tenant).where(Tenant.id.in_(select(Offering.tenant_id))).order_by(Tenant.name)))


@dataclass(frozen=True)
class ReferralFilter:
    """What the referrals list shows: one force, one state, a due-date window; the sort."""

    force: str | None = None  # a force's slug
    state: State | None = None
    due_from: date | None = None
    due_to: date | None = None
    sort: str = "due"
    descending: bool = False


SORTS = {"due": Referral.deadline, "force": Tenant.name, "state": Referral.state, "referred": Referral.created_at}


def referrals(provider: Provider, wanted: ReferralFilter, *, limit: int = 500) -> Sequence[tuple[Referral, Tenant]]:
    """The provider's referrals matching ``wanted``, each with its force.

    Refuses (``ProviderError``) an unknown sort and a window that ends before it starts.
    """
    _require_scope(provider)
    if wanted.sort not in SORTS:
        raise ProviderError("sort", _("Sort by one of: %(sorts)s.", sorts=", ".join(SORTS)))
    if wanted.due_from and wanted.due_to and wanted.due_to < wanted.due_from:
        raise ProviderError("due_to", _("The 'due by' date must be the same as or after the 'due from' date."))
    order = SORTS[wanted.sort]
    query = (select(Referral, Tenant).join(Tenant, Tenant.id == Referral.tenant_id)
             .where(Referral.provider_id == provider.id)  # the guard adds it too; here it also serves the index
             .order_by(order.desc() if wanted.descending else order, Referral.deadline, Referral.id))
    if wanted.force:
        query = query.where(Tenant.slug == wanted.force)
    if wanted.state:
        query = query.where(Referral.state == wanted.state)
    if wanted.due_from:
        query = query.where(Referral.deadline >= wanted.due_from)
    if wanted.due_to:
        query = query.where(Referral.deadline <= wanted.due_to)
    return db.session.execute(query.limit(limit)).tuples().all()


def find_referral(provider: Provider, referral_id: uuid.UUID) -> Referral | None:
    """One of the provider's referrals; None for any other (another provider's is not found)."""
    _require_scope(provider)
    referral = db.session.get(Referral, referral_id)
    return referral if referral is not None and referral.provider_id == provider.id else None


def find_session(provider: Provider, session_id: uuid.UUID) -> BookedSession | None:
    """A session booked for one of the provider's referrals; None for any other."""
    _require_scope(provider)
    return db.session.get(BookedSession, session_id)


@contextmanager
def _acting(referral: Referral, actor: User) -> Iterator[Tenant]:
    """The referral's force added to the provider's scope, for the force's services and the audit."""
    with acting_for_provider(referral.provider_id, referral.tenant_id, actor.id):
        tenant = db.session.get(Tenant, referral.tenant_id)
        if tenant is None:  # the referral's foreign key rules it out
            raise OutsideProviderScope("The referral's force is not there.")
        yield tenant


def record_listing(provider: Provider, shown: Sequence[tuple[Referral, Tenant]], *, actor: User) -> None:
    """Audit a list page: one event per force, naming the referrals it showed there.
    Refuses (``AccessRefused``) an actor who may not see the provider's referrals."""
    _require_scope(provider)
    require(actor, Action.READ_PROVIDER_REFERRALS, provider_id=provider.id)
    by_force: dict[int, list[str]] = defaultdict(list)
    for referral, tenant in shown:
        by_force[tenant.id].append(str(referral.id))
    for tenant_id, ids in by_force.items():
        with acting_for_provider(provider.id, tenant_id, actor.id):
            record("provider.referrals_listed", actor=actor, tenant_id=tenant_id, object_type="provider",
                   object_id=provider.id, details={"provider": provider.slug, "referrals": ids}, lasting=True)


@dataclass(frozen=True)
class ReferralView:
    """What the referral page shows: who to contact, and the referral's sessions."""

    referral: Referral
    tenant: Tenant
    identity: Identity
    contact: Contact
    sessions: list[BookedSession]
    language: str | None = None  # the language the person prefers, where their force asked


def view_referral(provider: Provider, referral: Referral, *, actor: User) -> ReferralView:
    """Open the referred person's name and contact details for the provider, and audit that.
    Refuses (``AccessRefused``) an actor who may not see the provider's referrals."""
    _require_scope(provider)
    require(actor, Action.READ_PROVIDER_REFERRALS, provider_id=provider.id)
    person = db.session.get(Person, referral.person_id)
    tenant = db.session.get(Tenant, referral.tenant_id)
    if person is None or tenant is None or referral.provider_id != provider.id:
        raise OutsideProviderScope("Not one of the provider's referrals.")
    sessions = list(db.session.scalars(
        select(BookedSession).where(BookedSession.referral_id == referral.id).order_by(BookedSession.starts_at)))
    with _acting(referral, actor):
        record("provider.referral_viewed", actor=actor, tenant_id=referral.tenant_id,
               object_type="referral", object_id=referral.id,
               details={"provider": provider.slug, "contact_details_shown": True}, lasting=True)
    return ReferralView(referral, tenant, open_identity(person.identity_sealed), open_contact(person.contact_sealed),
                        sessions, person.language)


def accept(referral: Referral, *, actor: User, reason: str = "") -> None:
    """The provider takes the referral on. Refuses a referral that is not offered."""
    with _acting(referral, actor) as tenant:
        cases.transition(tenant, referral, State.ACCEPTED, actor=actor, reason=reason,
                         why=None if reason.strip() else Why.ACCEPTED)


def decline(referral: Referral, *, actor: User, reason: str) -> Referral:
    """The provider cannot take the referral on, and says why: it ends, with the force's
    non-completion outcome. Refuses a blank reason and a referral that is not offered."""
    if not reason.strip():
        raise ProviderError("reason", _("Give the reason the referral is declined."))
    with _acting(referral, actor) as tenant:
        cases.transition(tenant, referral, State.DECLINED, actor=actor, reason=reason.strip())
    return referral


def if_missed(referral: Referral, *, actor: User, on: date) -> tuple[State, str]:
    """Where the referral would go were its next session recorded as missed (``cases.services.if_missed``)."""
    with _acting(referral, actor) as tenant:
        return cases.if_missed(tenant, referral, on=on)


def missed_allowed(referral: Referral, *, actor: User) -> int:
    """How many missed sessions the referral's force allows."""
    with _acting(referral, actor) as tenant:
        return rules.missed_sessions_allowed(tenant)


def book_session(referral: Referral, *, starts_at: datetime, venue: str, actor: User) -> BookedSession:
    """Book a session of the course, through the case services (``cases.services.book_session``,
    which says what is refused), with the referral's force added to the provider's scope."""
    with _acting(referral, actor) as tenant:
        session, _step = cases.book_session(tenant, referral, starts_at=starts_at, venue=venue, actor=actor)
    return session


def record_attendance(session: BookedSession, *, attended: bool, actor: User, note: str = "",
                      now: datetime | None = None) -> None:
    """Record whether the person came to a booked session, through the case services
    (``cases.services.record_attendance``, which says what is refused)."""
    referral = db.session.get(Referral, session.referral_id)
    if referral is None:
        raise OutsideProviderScope("Not one of the provider's referrals.")
    with _acting(referral, actor) as tenant:
        cases.record_attendance(tenant, session, attended=attended, actor=actor, note=note, now=now)


def complete(referral: Referral, *, actor: User, note: str = "") -> None:
    """The course is done: the force's completion outcome follows.

    Refuses a referral with sessions still to attend (``cases.transition``).
    """
    with _acting(referral, actor) as tenant:
        if note.strip():
            cases.transition(tenant, referral, State.COMPLETED, actor=actor, reason=note)
        else:
            cases.transition(tenant, referral, State.COMPLETED, actor=actor, why=Why.ALL_ATTENDED,
                             details={"sessions": referral.sessions_required})


# ---------------------------------------------------------------- the provider's referrals

@dataclass(frozen=True)
class ProviderReferral:
    """A referral as its provider sees it, loaded inside its force's scope."""

    force: Tenant
    referral: Referral
    course: Course
    position: int
    identity: Identity | None
    contact: Contact | None
    transitions: tuple[Transition, ...]
    sessions: tuple[BookedSession, ...]
    reference: str = ""  # the case's reference in its force (e.g. WM-2026-004217)
    language: str | None = None  # the language the person prefers ("en", "cy"), where their force asked


def provider_referrals(provider_id: int, *, after: int = 0, upto: int | None = None, limit: int | None = None,
                       referral_id: uuid.UUID | None = None) -> list[ProviderReferral]:
    """The referrals sent to one provider, from every force, in feed order.

    Runs in the provider's scope (``provider_scoped``): the ORM guard and
    row-level security show the provider's referrals, their people and its
    feed entries, from every force it serves, and nothing else. The filter
    on the provider below only picks its feed.

    ``after``/``upto`` bound the feed positions (exclusive/inclusive),
    ``limit`` caps the result, ``referral_id`` picks one referral.
    """
    entries = (select(FeedEntry.tenant_id, FeedEntry.referral_id, FeedEntry.position)
               .where(FeedEntry.provider_id == provider_id, FeedEntry.position > after)
               .order_by(FeedEntry.position))
    if upto is not None:
        entries = entries.where(FeedEntry.position <= upto)
    if referral_id is not None:
        entries = entries.where(FeedEntry.referral_id == referral_id)
    if limit is not None:
        entries = entries.limit(limit)
    with provider_scoped(provider_id, current_scope().user_id):
        # The page's positions first, from the feed's own index; then each kind of row for the page by
        # its keys, one statement each: a fixed number of small statements, whatever the page's length
        # (one statement joining them all is planned on RLS-blind estimates and scans the whole feed).
        page = db.session.execute(entries).all()
        if not page:
            return []
        forces = {force.id: force for force in db.session.scalars(
            select(Tenant).where(Tenant.id.in_({entry.tenant_id for entry in page})))}
        tenant_ids, ids = list(forces), [entry.referral_id for entry in page]
        referrals = {referral.id: referral for referral in db.session.scalars(
            select(Referral).where(Referral.tenant_id.in_(tenant_ids), Referral.id.in_(ids)))}
        people = {person.id: person for person in db.session.scalars(select(Person).where(
            Person.tenant_id.in_(tenant_ids), Person.id.in_({r.person_id for r in referrals.values()})))}
        references = dict(db.session.execute(select(Encounter.id, Encounter.reference).where(
            Encounter.tenant_id.in_(tenant_ids),
            Encounter.id.in_({r.encounter_id for r in referrals.values()}))).tuples().all())
        courses = dict(db.session.execute(
            select(Offering.id, Course).join(Course, Course.id == Offering.course_id).where(
                Offering.tenant_id.in_(tenant_ids),
                Offering.id.in_({r.offering_id for r in referrals.values()}))).tuples().all())
        sessions: dict[uuid.UUID, list[BookedSession]] = {}
        for session in db.session.scalars(
                select(BookedSession).where(BookedSession.tenant_id.in_(tenant_ids),
                                            BookedSession.referral_id.in_(ids))
                .order_by(BookedSession.starts_at, BookedSession.booked_at)):
            sessions.setdefault(session.referral_id, []).append(session)
        found = []
        for entry in page:
            referral = referrals.get(entry.referral_id)
            if referral is None or referral.offering_id not in courses or referral.person_id not in people:
                continue  # not the provider's to see (row-level security keeps it out)
            found.append(ProviderReferral(
                forces[referral.tenant_id], referral, courses[referral.offering_id], int(entry.position),
                *_personal(people[referral.person_id]),
                tuple(referral.transitions),
                tuple(sessions.get(referral.id, ())), references.get(referral.encounter_id, ""),
                people[referral.person_id].language))
        return found


def _personal(person: Person) -> tuple[Identity | None, Contact | None]:
    try:
        return open_identity(person.identity_sealed), open_contact(person.contact_sealed)
    except Unreadable:
        return None, None


@dataclass(frozen=True)
class FeedPage:
    items: list[ProviderReferral]
    next_position: int
    more: bool


def feed_page(provider_id: int, *, after: int, limit: int) -> FeedPage:
    """The referrals changed after position ``after``, oldest change first.
    Refuses (``CursorError``) a position the provider's feed has not reached.

    Reads the high-water mark first and stops there, so nothing later can
    appear below the page's last position (see ``providers.feed``).
    """
    from diversion.providers.feed import CursorError, high_water

    mark = high_water(provider_id)
    if after > mark:
        raise CursorError("cursor", _("This cursor is ahead of the feed: it was not given out for this provider."))
    items = provider_referrals(provider_id, after=after, upto=mark, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    # Past the last item shown; or, with nothing after the cursor, the mark
    # itself, so that gaps (rolled-back changes) are not read again.
    next_position = items[-1].position if more else max(after, mark)
    return FeedPage(items, next_position, more)


def move(provider_id: int, referral_id: uuid.UUID, to: State, *, reason: str, expected: State | None,
         token: ProviderToken, session: cases.SessionDetails | None = None,
         session_id: uuid.UUID | None = None) -> ProviderReferral | None:
    """Move one of the provider's referrals on, the one way each state is reached
    (``cases.services.move_to``), with the referral's force in scope. None when
    the provider has no such referral.

    Refuses (``MoveError``) a move the provider may not make (withdrawal
    is the force's), a referral no longer in the ``expected`` state, and a
    move the lifecycle does not allow from its state; ``CaseError`` for the
    rest (a missing reason, a session's details). The move's own audit event names the token
    (``audit.through``, set by the provider API).
    """
    found = provider_referrals(provider_id, referral_id=referral_id)
    if not found:
        return None
    force = found[0].force
    if to not in PROVIDER_MOVES:
        raise MoveError("to", _("Only the force can withdraw a referral."))
    with acting_for_provider(provider_id, force.id):
        referral = db.session.scalar(select(Referral).where(Referral.id == referral_id).with_for_update()
                                     .execution_options(populate_existing=True))
        if referral is None:  # found a moment ago, in this transaction
            return None
        if expected is not None and referral.state is not expected:
            raise MoveError("expected_state", _("The referral is %(now)s now, not %(expected)s: fetch it again "
                                                "before moving it.",
                                                now=referral.state.label.lower(), expected=expected.label.lower()))
        try:
            cases.move_to(force, referral, to, actor=token, reason=reason, session=session, session_id=session_id)
        except cases.CaseError as error:
            if error.field == "state":
                raise MoveError("to", error.message) from error
            raise
    return found[0]
