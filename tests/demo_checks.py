"""What the demo must agree with: walked by the test that builds the whole demo (``tests/test_cli.py``)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from itertools import pairwise

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from diversion.accounts.models import ProviderMembership
from diversion.cases import services as cases
from diversion.cases.models import DEMO, FINAL_STATES, TRANSITIONS, Attendance, Encounter, Referral, State
from diversion.catalogue.models import Course, Offering
from diversion.db import LONDON
from diversion.demo import BACKLOG, WELSH_VENUE
from diversion.eligibility import services as eligibility
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.listing import PER_PAGE
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from diversion.words import WELSH


def _day(moment: datetime) -> date:
    return moment.astimezone(LONDON).date()


def referral_problems(referral: Referral, offering: Offering | None, decision: Decision | None, *,  # noqa: PLR0912
                      now: datetime) -> list[str]:
    """Every way a referral disagrees with itself, its decision (``decision``), its course
    (``offering``'s) or the clock."""
    problems: list[str] = []
    steps = list(referral.transitions)
    sessions = list(referral.sessions)
    if not steps or steps[0].to_state is not State.OFFERED or steps[0].from_state is not None:
        return ["its first step is not the offer"]
    offered_on = _day(steps[0].occurred_at)
    if _day(referral.created_at) != offered_on:
        problems.append(f"made on {_day(referral.created_at)} but offered on {offered_on}")
    if decision is None or decision.final_outcome != "eligible" or decision.final_pathway != referral.pathway:
        problems.append("its decision is not eligible for its pathway")
    else:
        pathway = eligibility.compiled(decision.policy_version).pathway(referral.pathway)
        if pathway is None or referral.deadline != offered_on + timedelta(days=pathway.deadline_days):
            problems.append(f"due {referral.deadline}, not its pathway's deadline from {offered_on}")
        if offered_on < decision.decided_on:
            problems.append("offered before its decision")
    if offering is None or referral.sessions_required != offering.course.sessions:
        problems.append(f"asks for {referral.sessions_required} sessions, not its course's")
    attended = [s for s in sessions if s.attendance is Attendance.ATTENDED]
    if referral.sessions_attended != len(attended):
        problems.append(f"{referral.sessions_attended} sessions attended, but {len(attended)} recorded")
    if referral.sessions_attended > referral.sessions_required:
        problems.append("more sessions attended than required")
    for session in sessions:
        if session.attendance is not None and (session.starts_at > now or session.attendance_recorded_at is None
                                               or session.attendance_recorded_at < session.starts_at):
            problems.append(f"attendance recorded for the session of {session.starts_at} before it started")
        if _day(session.starts_at) > referral.deadline:
            problems.append(f"a session on {_day(session.starts_at)}, after the deadline")
        if session.booked_at > session.starts_at and session.attendance is None and session.starts_at > now:
            problems.append("a session booked after it starts")
    times = [step.occurred_at for step in steps]
    if times != sorted(times) or times[-1] > now:
        problems.append("its steps are out of order or in the future")
    for before, after in pairwise(steps):
        if after.from_state is not before.to_state or after.to_state not in TRANSITIONS.get(before.to_state, ()):
            problems.append(f"a step from {after.from_state} after reaching {before.to_state}")
    if steps[-1].to_state is not referral.state:
        problems.append(f"is {referral.state.value} but its last step reached {steps[-1].to_state.value}")
    if referral.state is State.COMPLETED and referral.sessions_attended != referral.sessions_required:
        problems.append("completed without every session attended")
    if referral.state in FINAL_STATES - {State.WITHDRAWN} and referral.outcome_label is None:
        problems.append(f"{referral.state.value} with no outcome")
    if referral.state is State.WITHDRAWN and (referral.outcome_code or referral.outcome_label):
        problems.append("withdrawn with an outcome")  # a withdrawn referral records none
    if referral.state not in FINAL_STATES and (referral.outcome_code or referral.outcome_label):
        problems.append("open with an outcome")
    if referral.state is State.BOOKED and not any(s.attendance is None for s in sessions):
        problems.append("booked with no session awaiting attendance")
    return problems


def _working_hours(moment: datetime) -> bool:
    local = moment.astimezone(LONDON)
    return local.weekday() < 5 and local.minute in (0, 30) and local.second == 0 and time(9) <= local.time() <= time(17)


def case_work_problems(referral: Referral, staff: set[int], *, welsh: bool) -> list[str]:
    """Every way a referral of the demo's own case work (``seed_case_work``) is unlike real work:
    a provider's step not made by one of its people (``staff``, where it has any), a step or a
    session outside working hours (a weekday's hour or half hour, 09:00 to 17:00 in London), a
    session's venue in English alone where the force works in Welsh too (``welsh``)."""
    problems: list[str] = []
    if welsh:
        problems.extend(f"a session at {session.venue}, in English alone" for session in referral.sessions
                        if session.venue != WELSH_VENUE)
    for step in list(referral.transitions)[1:]:
        if staff and step.to_state is not State.WITHDRAWN and step.actor_id not in staff:
            problems.append(f"{step.to_state.value} not made by the provider's staff")
        if not _working_hours(step.occurred_at):
            problems.append(f"{step.to_state.value} at {step.occurred_at.astimezone(LONDON)}")
    problems.extend(f"a session at {session.starts_at.astimezone(LONDON)}" for session in referral.sessions
                    if not _working_hours(session.starts_at))
    return problems


def check_demo(*, today: date, now: datetime) -> None:
    """Every force's referrals agree with themselves, and every list has three pages."""
    assert BACKLOG > 3 * PER_PAGE
    staff: dict[int, set[int]] = {}
    for membership in db.session.scalars(select(ProviderMembership)):
        staff.setdefault(membership.provider_id, set()).add(membership.user_id)
    overdue_examples = 0
    for tenant in db.session.scalars(select(Tenant).order_by(Tenant.slug)).all():
        with scoped(tenant.id):
            referrals = db.session.scalars(select(Referral).options(
                selectinload(Referral.sessions))).all()
            offerings = {o.id: o for o in db.session.scalars(select(Offering).options(joinedload(Offering.course)))}
            decisions = {d.encounter_id: d for d in db.session.scalars(
                select(Decision).where(Decision.encounter_id.is_not(None)))}
            made_here = set(db.session.scalars(select(Encounter.id).where(Encounter.source == DEMO)))
            for referral in referrals:
                problems = referral_problems(referral, offerings.get(referral.offering_id),
                                             decisions.get(referral.encounter_id), now=now)
                assert not problems, f"{tenant.slug}: a referral {problems}"
                if referral.encounter_id in made_here:
                    problems = case_work_problems(referral, staff.get(referral.provider_id, set()),
                                                  welsh=WELSH in tenant.languages)
                    assert not problems, f"{tenant.slug}: a referral of the demo's case work {problems}"
                if referral.state.is_open and referral.deadline < today:
                    # Only the recent case work's oldest referrals are overdue, on purpose.
                    encounter = db.session.get(Encounter, referral.encounter_id)
                    assert encounter is not None
                    assert encounter.source == "demo", f"{tenant.slug}: an imported referral is overdue"
                    overdue_examples += 1
            encounters = db.session.scalar(select(func.count()).select_from(Encounter))
            assert encounters is not None
            assert encounters > 3 * PER_PAGE, tenant.slug
            assert len(referrals) > 3 * PER_PAGE, tenant.slug
            assert cases.awaiting_review() > 3 * PER_PAGE, tenant.slug
            by_provider = Counter(referral.provider_id for referral in referrals)
            providers = set(db.session.scalars(select(Course.provider_id).join(Offering,
                                                                               Offering.course_id == Course.id)))
            assert set(by_provider) == providers, tenant.slug
            assert all(count > 3 * PER_PAGE for count in by_provider.values()), (tenant.slug, by_provider)
    assert overdue_examples  # the home page's "open past their deadline" has something to show
