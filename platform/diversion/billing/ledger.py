"""The ledger: every billable fact of a force, written once, never changed.

The ledger listens to referral moves (``cases.events``); it is not a second
copy of the lifecycle. A move to accepted, attended or completed that is
news (not imported history) is billable: the contract of the force and the
referral's provider in force on the move's date (in London) prices it, and
one row is written in the move's own transaction, so the row commits or
rolls back with the move. No contract, or no price for the event kind and
pathway: no row (nothing is owed).

Each row's ``key`` is derived from what it is about (the move's transition,
a contract's month, the row a reversal reverses) and is unique in the force
in the database, so a fact can never be written twice: not by a replayed
announcement, not by two writers at once (the second waits on the unique
index for the first, then finds the key taken and writes nothing).

A row belongs to the month of its event unless that month is closed: then
to the next open month (``open_month``), so that a closed month's statement
never changes. Rows are corrected only by reversing rows (``reverse``);
UPDATE and DELETE are refused here for the ORM and by a trigger on
PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import and_, event, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState, Session

from diversion.accounts.access import Action, Actor, require, user_id_of
from diversion.billing.contracts import contract_in_force, prices_of
from diversion.billing.models import ClosedMonth, Contract, EventKind, LedgerEntry
from diversion.billing.months import month_key, month_of, next_month
from diversion.cases.events import Moved, referrals_moved
from diversion.cases.models import State
from diversion.db import LONDON, utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.tenancy.models import Tenant

# The moves a provider is paid for, and what each is on the ledger.
BILLABLE: dict[State, EventKind] = {
    State.ACCEPTED: EventKind.REFERRAL_ACCEPTED,
    State.ATTENDED: EventKind.SESSION_ATTENDED,
    State.COMPLETED: EventKind.COURSE_COMPLETED,
}
_KEYS_PER_QUERY = 500  # keys looked up at once (a batch of moves can hold thousands)


class LedgerChanged(RuntimeError):  # noqa: N818 - reads as the condition it reports
    """Raised when something tries to change or delete a ledger row: write a reversal instead."""


def event_key(transition_id: uuid.UUID) -> str:
    return f"referral-event:{transition_id}"


def fee_key(contract_id: uuid.UUID, month: date) -> str:
    return f"monthly-fee:{contract_id}:{month_key(month)}"


def reversal_key(entry_id: uuid.UUID) -> str:
    return f"reversal:{entry_id}"


def london_date(moment: datetime) -> date:
    return moment.astimezone(LONDON).date()


# ---------------------------------------------------------------- months and contracts

def hold_months(tenant_id: int) -> None:
    """Keep the force's months as they are until this transaction ends: taken before a ledger
    writer reads which months are closed.

    Why: a writer that read "October is open" must not commit its October row after the close
    has locked October and written its statement. Every writer takes a KEY SHARE lock on the
    force's row (writers do not block one another, nor ordinary changes of the force); the close
    takes FOR UPDATE on it (``lock_months``) before it records a closed month, so it waits for the
    writers already under way, and the writers after it see the month closed. SQLite has one
    writer at a time anyway (no lock is written there).
    """
    db.session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update(key_share=True))


def lock_months(tenant_id: int) -> None:
    """For the monthly close, before it records a closed month: wait for the ledger writers of the
    force under way, and keep new ones waiting until the close's transaction ends (see ``hold_months``)."""
    db.session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())


def open_month(tenant_id: int, month: date) -> date:
    """The month a row of ``month`` goes to in the force ``tenant_id``: ``month`` itself, or the
    first month after it that is not closed."""
    closed = set(db.session.scalars(select(ClosedMonth.month).where(
        ClosedMonth.tenant_id == tenant_id, ClosedMonth.month >= month)))
    while month in closed:
        month = next_month(month)
    return month


def is_closed(tenant_id: int, month: date) -> bool:
    return db.session.scalar(select(ClosedMonth.id).where(
        ClosedMonth.tenant_id == tenant_id, ClosedMonth.month == month)) is not None


# ---------------------------------------------------------------- writing rows

def _taken(keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        found.update(db.session.scalars(select(LedgerEntry.key).where(
            LedgerEntry.key.in_(keys[start:start + _KEYS_PER_QUERY]))))
    return found


def _write(rows: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    """Add the rows whose key is not taken yet; returns those written.

    A row whose key another transaction writes at the same moment is found at
    the unique index (the database makes this writer wait for the other, then
    refuses the key): it is dropped, since that fact is on the ledger already.
    """
    fresh: dict[str, LedgerEntry] = {}
    for row in rows:
        fresh.setdefault(row.key, row)
    for key in _taken(list(fresh)):
        del fresh[key]
    if not fresh:
        return []
    try:
        with db.session.begin_nested():
            db.session.add_all(fresh.values())
    except IntegrityError:  # a concurrent writer took a key: write the others one by one
        written = []
        for row in fresh.values():
            again = _copy(row)
            try:
                with db.session.begin_nested():
                    db.session.add(again)
            except IntegrityError:
                continue
            written.append(again)
        return written
    return list(fresh.values())


def _copy(row: LedgerEntry) -> LedgerEntry:
    """A fresh object with the same values (a rolled-back savepoint leaves the first one unusable)."""
    columns = [column.key for column in LedgerEntry.__table__.columns if column.key not in ("id", "created_at")]
    return LedgerEntry(**{name: getattr(row, name) for name in columns})


@referrals_moved.connect
def into_the_ledger(tenant: Tenant, *, moves: Sequence[Moved], history: bool) -> None:
    """Listener of referral moves (``cases.events``): one ledger row per billable move that is
    news, priced by the contract in force on the move's date; in the caller's transaction,
    with the force in scope. History (an import) writes nothing."""
    if history:
        return
    contracts: dict[tuple[int, date], Contract | None] = {}
    prices: dict[uuid.UUID, dict[tuple[EventKind, str], int]] = {}
    months: dict[date, date] = {}
    rows = []
    for move in moves:
        kind = BILLABLE.get(move.to)
        if kind is None:
            continue
        on = london_date(move.occurred_at)
        if (move.provider_id, on) not in contracts:
            contracts[move.provider_id, on] = contract_in_force(move.provider_id, on)
        contract = contracts[move.provider_id, on]
        if contract is None:
            continue
        if contract.id not in prices:
            prices[contract.id] = prices_of(contract)
        unit = prices[contract.id].get((kind, move.pathway))
        if unit is None:
            continue
        month = month_of(move.occurred_at)
        if month not in months:
            if not months:
                hold_months(tenant.id)
            months[month] = open_month(tenant.id, month)
        rows.append(LedgerEntry(
            tenant_id=tenant.id, key=event_key(move.transition_id), provider_id=move.provider_id,
            contract_id=contract.id, month=months[month], kind=kind, pathway=move.pathway,
            referral_id=move.referral_id, occurred_at=move.occurred_at, unit_pence=unit, quantity=1,
            amount_pence=unit))
    if rows:
        _write(rows)
        db.session.flush()


# ---------------------------------------------------------------- the services

def _month_bounds(month: date) -> tuple[date, date]:
    return month, date.fromordinal(next_month(month).toordinal() - 1)


def contracts_with_fees(tenant_id: int, month: date) -> list[Contract]:
    """The force's contracts in force for at least a day of ``month`` that carry a monthly fee."""
    first, last = _month_bounds(month)
    return list(db.session.scalars(select(Contract).where(
        Contract.tenant_id == tenant_id, Contract.monthly_fee_pence > 0, Contract.starts_on <= last,
        or_(Contract.ends_on.is_(None), Contract.ends_on >= first)).order_by(Contract.provider_id, Contract.starts_on)))


def fees_to_charge(tenant_id: int, provider_id: int, month: date) -> int:
    """The monthly fees (in pence, before VAT) the close of ``month`` will charge the force for the
    provider's contracts: those of ``contracts_with_fees`` not charged yet."""
    theirs = {fee_key(contract.id, month): contract.monthly_fee_pence
              for contract in contracts_with_fees(tenant_id, month) if contract.provider_id == provider_id}
    if not theirs:
        return 0
    charged = set(db.session.scalars(select(LedgerEntry.key).where(
        LedgerEntry.tenant_id == tenant_id, LedgerEntry.key.in_(theirs))))
    return sum(fee for key, fee in theirs.items() if key not in charged)


def charge_monthly_fees(tenant: Tenant, month: date, *, actor: Actor) -> int:
    """Write each contract's monthly fee for ``month`` (one row per contract in force for at least a
    day of it with a fee), in the open month from ``month`` on; returns how many rows were new.

    Idempotent: a fee already charged is not charged again (its key is the contract and month).
    Refuses an actor who may not close a month (``CLOSE_MONTH``).
    """
    require(actor, Action.CLOSE_MONTH, tenant_id=tenant.id)
    first = _month_bounds(month)[0]
    hold_months(tenant.id)
    target = open_month(tenant.id, first)
    at = datetime(first.year, first.month, first.day, 12, tzinfo=LONDON)  # the month's first day, London
    rows = [LedgerEntry(tenant_id=tenant.id, key=fee_key(contract.id, first), provider_id=contract.provider_id,
                        contract_id=contract.id, month=target, kind=EventKind.MONTHLY_FEE, pathway="",
                        occurred_at=at, unit_pence=contract.monthly_fee_pence, quantity=1,
                        amount_pence=contract.monthly_fee_pence, created_by_id=user_id_of(actor))
            for contract in contracts_with_fees(tenant.id, first)]
    written = _write(rows)
    db.session.flush()
    return len(written)


REASON_LIMIT = 500


def reverse(tenant: Tenant, entry: LedgerEntry, *, reason: str, actor: Actor) -> LedgerEntry:
    """Cancel a ledger row with a reversing row: the same contract, kind, pathway and referral, the
    negated unit price, the reason given, in the force's open month from today's on.

    Refuses (``FieldError`` on ``reason``) a blank reason or one over 500 characters; refuses
    (``FieldError`` on ``entry``) a row of another force, a row already reversed, and a reversal
    itself. Refuses an actor who may not correct the ledger (``CORRECT_LEDGER``).
    """
    require(actor, Action.CORRECT_LEDGER, tenant_id=tenant.id)
    reason = " ".join(reason.split())
    if not reason:
        raise FieldError("reason", _("Enter why this row is reversed"))
    if len(reason) > REASON_LIMIT:
        raise FieldError("reason", _("The reason must be %(max)s characters or fewer", max=REASON_LIMIT))
    if entry.tenant_id != tenant.id:
        raise FieldError("entry", _("This row is not on this force's ledger."))
    if entry.reverses_id is not None:
        raise FieldError("entry", _("This row is itself a reversal: it cannot be reversed."))
    if db.session.scalar(select(LedgerEntry.id).where(LedgerEntry.reverses_id == entry.id)) is not None:
        raise FieldError("entry", _("This row has already been reversed."))
    now = utcnow()
    hold_months(tenant.id)
    row = LedgerEntry(
        tenant_id=tenant.id, key=reversal_key(entry.id), provider_id=entry.provider_id,
        contract_id=entry.contract_id, month=open_month(tenant.id, month_of(now)), kind=entry.kind,
        pathway=entry.pathway, referral_id=entry.referral_id, occurred_at=now, unit_pence=-entry.unit_pence,
        quantity=entry.quantity, amount_pence=-entry.amount_pence, reverses_id=entry.id, reason=reason,
        created_by_id=user_id_of(actor))
    if not _write([row]):  # another reversal of it committed in the meantime
        raise FieldError("entry", _("This row has already been reversed."))
    db.session.flush()
    return row


def reversed_ids(entry_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``entry_ids`` have been reversed."""
    ids = list(entry_ids)
    if not ids:
        return set()
    return {found for found in db.session.scalars(select(LedgerEntry.reverses_id).where(
        LedgerEntry.reverses_id.in_(ids))) if found is not None}


def count_rows(tenant_id: int, month: date) -> int:
    return int(db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
        and_(LedgerEntry.tenant_id == tenant_id, LedgerEntry.month == month))) or 0)


# ---------------------------------------------------------------- the ORM guard

def _refuse_changes(session: Session, _context: Any, _instances: Any) -> None:
    """Refuse a flush that changes or deletes a ledger row (the database refuses it too, on PostgreSQL)."""
    for row in session.deleted:
        if isinstance(row, LedgerEntry):
            raise LedgerChanged("Ledger rows are never deleted: write a reversal.")
    for row in session.dirty:
        if isinstance(row, LedgerEntry) and session.is_modified(row, include_collections=False):
            raise LedgerChanged("Ledger rows are never changed: write a reversal.")


def _refuse_bulk_changes(state: ORMExecuteState) -> None:
    """Refuse an ORM UPDATE or DELETE statement on the ledger."""
    if (state.is_update or state.is_delete) and any(
            mapper.class_ is LedgerEntry for mapper in state.all_mappers):
        raise LedgerChanged("Ledger rows are never changed or deleted: write a reversal.")


def _install_guard() -> None:
    if not event.contains(Session, "before_flush", _refuse_changes):
        event.listen(Session, "before_flush", _refuse_changes)
        event.listen(Session, "do_orm_execute", _refuse_bulk_changes)


_install_guard()
