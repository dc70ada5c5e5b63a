"""Onboarding a force in the console: a draft force, set up step by step, then opened.

A *draft* is a force (``Tenant``) with the status draft. It exists from the
first step on, so that leaving half way keeps it (the console lists it to
resume or discard), and while it is a draft its pages are closed to its
members and it takes no cases (``tenancy.web``, ``cases.services``). A
platform admin acts as its force admin meanwhile (``accounts.access``), so
the force's own pages and services (the policy console, the offerings)
serve the set-up.

The steps (``progress`` says where a draft stands):

1. **Details** (``start_draft``, then ``change_details``): name, address,
   scheme name, force area, languages, outcome codes and brand colour,
   checked by the very rules a force file is checked by
   (``forces.files.ForceFile``), plus an address no other force has.
   Starting makes the draft.
2. **First policy** (``copy_policy`` or ``blank_policy``): a copy of another
   force's policy in force, or a blank one written over the field
   catalogue, saved as the force's draft version; it must pass its own
   tests. A blank one is then written in the policy console
   (``/<force>/policy/draft``). A force that works in Welsh may start from
   a policy without its Welsh (an English force's, the blank one): what
   it lacks is said in words (``PolicyState.welsh_missing``), and the step
   is done once every sentence has its Welsh, added in the policy console.

   The policy is published when the force is finished, not at this step:
   a published version can never change or be deleted (the database
   refuses it), so a draft force discarded before it opens must not have
   one, and nothing is decided with the policy before the force opens
   anyway. Until then ``eligibility.services.publish`` refuses to publish a
   draft force's policy, and the step is done when the draft version
   passes its tests.
3. **Offerings** (``set_offerings``): courses of the catalogue that fit the
   draft policy's pathways in the force's area (``catalogue.files.misfit``).
   A pathway no course fits is left without one; when none fits any, the
   step is done with no course offered.
4. **Single sign-on**, optional (``set_sign_on``): the force's identity
   provider, through ``accounts.sso.configure_sign_on``.
5. **The first force admin** (``invite_first_admin``): an invitation
   (``accounts.invitations.invite_to_force``) whose link is shown once;
   whoever takes it up gets the role, and the force's pages open to them
   when the force opens.

``finish`` checks every required step, publishes the policy (in force
from that day) and opens the force, audited. ``discard`` deletes a draft
force and every row it has; it refuses a force that has opened.

Every service here refuses an actor who may not onboard forces
(``AccessRefused``), and a force that is no longer a draft
(``OnboardingError``, naming the field at fault, as every refusal here);
those taking ``tenant`` expect it in scope. One serves a force at any stage,
checked by the same rules: ``change_names``, a force's names and outcome
codes, for its force admins and the platform admins.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from pydantic import ValidationError
from sqlalchemy import delete, func, or_, select

from diversion.accounts.access import Action, require
from diversion.accounts.invitations import ForceInvitation, invite_to_force
from diversion.accounts.models import ForceMembership, Role
from diversion.accounts.sso import ForceSignOn, configure_sign_on, sign_on_of
from diversion.audit.services import record
from diversion.catalogue.files import OfferingEntry, misfit
from diversion.catalogue.models import Course, Offering
from diversion.catalogue.services import fitting_courses, sync_offerings
from diversion.db import TENANT_SCOPED, Base, utcnow
from diversion.eligibility import services as policies
from diversion.eligibility.compiler import PolicyInvalid
from diversion.eligibility.document import Pathway
from diversion.eligibility.engine import TestOutcome
from diversion.eligibility.fields import FIELDS, Kind
from diversion.eligibility.models import Origin, PolicyVersion
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.forces.files import RESERVED_SLUGS, ForceFile
from diversion.forces.services import change_status, force_columns
from diversion.tenancy.context import current_scope, scoped
from diversion.tenancy.models import ForceStatus, Tenant
from diversion.words import WELSH, current_language

if TYPE_CHECKING:
    from diversion.accounts.access import Actor


class OnboardingError(FieldError):
    """A refused step of a force's set-up; ``field`` names the input at fault."""


# ---------------------------------------------------------------- details

@dataclass(frozen=True)
class ForceDetails:
    """What the details step asks for. ``languages`` are codes (en, cy),
    ``area`` a police force area's address, ``not_completed_action`` a
    ``NonCompletionAction`` value."""

    name: str
    slug: str
    scheme_name: str
    area: str
    languages: list[str]
    completed_code: str
    completed_label: str
    not_completed_code: str
    not_completed_label: str
    not_completed_action: str
    brand_colour: str
    completed_label_cy: str = ""  # the labels in Welsh: blank for none
    not_completed_label_cy: str = ""
    name_cy: str = ""  # the force's name in Welsh: blank for none


@dataclass(frozen=True)
class ForceNames:
    """The details a force changes once it is open (``change_names``): its names, its outcome codes with
    what they mean, and what happens on non-completion. Blank Welsh is none."""

    name: str
    name_cy: str
    scheme_name: str
    completed_code: str
    completed_label: str
    completed_label_cy: str
    not_completed_code: str
    not_completed_label: str
    not_completed_label_cy: str
    not_completed_action: str


# How a refusal names each input, and where the force file keeps it.
_WORDS = {
    "name": _l("The force's name"), "name_cy": _l("The force's name in Welsh"),
    "slug": _l("The address"), "scheme_name": _l("The scheme's name"),
    "area": _l("The force area"), "languages": _l("The languages"), "brand_colour": _l("The brand colour"),
    "completed_code": _l("The code on completion"), "completed_label": _l("What the code on completion means"),
    "not_completed_code": _l("The code on non-completion"),
    "not_completed_label": _l("What the code on non-completion means"),
    "not_completed_action": _l("What happens on non-completion"),
    "completed_label_cy": _l("What the code on completion means, in Welsh"),
    "not_completed_label_cy": _l("What the code on non-completion means, in Welsh"),
}
_PLACES: dict[tuple[str, ...], str] = {
    ("outcomes", "completed", "code"): "completed_code",
    ("outcomes", "completed", "label"): "completed_label",
    ("outcomes", "not_completed", "code"): "not_completed_code",
    ("outcomes", "not_completed", "label"): "not_completed_label",
    ("outcomes", "not_completed", "action"): "not_completed_action",
    ("outcomes", "not_completed"): "not_completed_code",
    ("outcomes", "completed", "label_cy"): "completed_label_cy",
    ("outcomes", "not_completed", "label_cy"): "not_completed_label_cy",
}


def _as_file(details: ForceDetails) -> ForceFile:
    """The details as a force file would give them, checked by the file's own
    rules; the first problem refused, named by the input it comes from."""
    if not details.area.strip():
        raise OnboardingError("area", _("Choose the force area."))
    if (slug := details.slug.strip()) in RESERVED_SLUGS:
        raise OnboardingError("slug", _("‘%(slug)s’ is one of the platform’s own addresses: choose another address.",
                                        slug=slug))
    data: dict[str, Any] = {
        "slug": details.slug.strip(), "name": details.name, "name_cy": details.name_cy.strip() or None,
        "scheme_name": details.scheme_name,
        "languages": list(details.languages), "brand_colour": details.brand_colour.strip(),
        "area": details.area.strip(),
        "outcomes": {
            "completed": {"code": details.completed_code, "label": details.completed_label,
                          "label_cy": details.completed_label_cy.strip() or None},
            "not_completed": {"code": details.not_completed_code, "label": details.not_completed_label,
                              "label_cy": details.not_completed_label_cy.strip() or None,
                              "action": details.not_completed_action},
        },
    }
    try:
        return ForceFile.model_validate(data)
    except ValidationError as error:
        item = error.errors()[0]
        loc = tuple(str(part) for part in item["loc"])
        name = _PLACES.get(loc[:3]) or _PLACES.get(loc[:2]) or (loc[0] if loc else "details")
        raise OnboardingError(name, _plain(name, item)) from None


def _plain(name: str, item: Any) -> str:
    """A validation problem in a sentence that names the input."""
    what = str(_WORDS.get(name, _l("The answer")))
    kind, message = item["type"], str(item["msg"]).removeprefix("Value error, ")
    if kind in ("missing", "string_too_short"):
        return str(_("%(what)s cannot be empty.", what=what) if name != "languages"
                   else _("Choose at least one language."))
    if kind == "too_short":
        return str(_("Choose at least one language."))
    if kind == "string_too_long":
        return str(_("%(what)s must be %(limit)s characters or fewer.", what=what, limit=item["ctx"]["max_length"]))
    if kind == "enum":
        return str(_("%(what)s: choose one of the answers given.", what=what))
    # The force file's own rule, said in English (``forces.files``).
    if message.startswith(("must", "is ")):
        return f"{what} {message}."
    return f"{what}: {message}."


def _address_free(slug: str) -> None:
    if db.session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise OnboardingError("slug", _("A force already has the address %(slug)s: choose another.", slug=repr(slug)))


def _names_free(force: ForceFile, *, but: int | None = None) -> None:
    """Refuse a name, or a Welsh name, that another force (but ``but``) has in either language, in any
    case: every list of forces names them, in the reader's language."""
    for field_name, name in (("name", force.name), ("name_cy", force.name_cy)):
        if not name:
            continue
        taken = select(Tenant.id).where(or_(func.lower(Tenant.name) == name.lower(),
                                            func.lower(Tenant.name_cy) == name.lower()))
        if db.session.scalar(taken.where(Tenant.id != but) if but is not None else taken) is not None:
            raise OnboardingError(field_name, _("A force is already called %(name)s: give this force its own name.",
                                                name=name))


def _only_draft(tenant: Tenant) -> None:
    if tenant.status is ForceStatus.ACTIVE:
        raise OnboardingError("force", _("%(force)s is not being set up: it is active.",
                                         force=tenant.name_in(current_language())))
    if tenant.status is ForceStatus.SUSPENDED:
        raise OnboardingError("force", _("%(force)s is not being set up: it is suspended.",
                                         force=tenant.name_in(current_language())))


def start_draft(details: ForceDetails, *, actor: Actor) -> Tenant:
    """Make a draft force from its details (the set-up's first step).

    Refuses an actor who may not onboard forces (``AccessRefused``), and
    (``OnboardingError``) what a force file's rules refuse (``ForceFile``: an
    address that is not lower-case letters, digits and single hyphens or is
    one of the platform's own, a blank or too long text, an unknown area or
    language, a colour not written #rrggbb, a non-completion action not
    listed), no area, and an address or a name (in any case) another force has.
    """
    require(actor, Action.ONBOARD_FORCE)
    force = _as_file(details)
    _address_free(force.slug)
    _names_free(force)
    tenant = Tenant(slug=force.slug, status=ForceStatus.DRAFT, **force_columns(force))
    db.session.add(tenant)
    db.session.flush()
    with scoped(tenant.id, current_scope().user_id):
        record("tenant.draft_started", actor=actor, tenant_id=tenant.id, object_type="tenant", object_id=tenant.id,
               details={"slug": tenant.slug, "name": tenant.name})
    return tenant


def change_details(tenant: Tenant, details: ForceDetails, *, actor: Actor) -> list[str]:
    """Change a draft force's details, but its address (which cannot change);
    returns the names of the details changed.

    Refuses what ``start_draft`` refuses (but the address), and a force that
    is no longer a draft.
    """
    require(actor, Action.ONBOARD_FORCE)
    _only_draft(tenant)
    force = _as_file(replace(details, slug=tenant.slug))
    _names_free(force, but=tenant.id)
    values = {k: v for k, v in force_columns(force).items() if k != "settings"}
    changed = [k for k, v in values.items() if getattr(tenant, k) != v]
    for key in changed:
        setattr(tenant, key, values[key])
    if changed:
        db.session.flush()
        record("tenant.updated", actor=actor, tenant_id=tenant.id, object_type="tenant", object_id=tenant.id,
               details={"fields": changed})
    return changed


def welsh_labels_required(tenant: Tenant) -> bool:
    """Whether the force's outcome labels must have their Welsh: it is open and works in Welsh."""
    return WELSH in tenant.languages and tenant.status is not ForceStatus.DRAFT


def change_names(tenant: Tenant, names: ForceNames, *, actor: Actor) -> dict[str, tuple[Any, Any]]:
    """Change a force's names, outcome codes and labels and what happens on non-completion, at any
    stage of its life; each change recorded with its value before and after, and returned (nothing
    changed: nothing recorded, an empty answer). Referrals that have ended keep the code and label
    they ended with.

    Refuses an actor who may not change this force's settings (``AccessRefused``); what
    ``start_draft`` refuses of these details; and, for an open force that works in Welsh, an outcome
    label without its Welsh (its Welsh pages would be in English) (``OnboardingError`` naming the input).
    """
    require(actor, Action.CHANGE_FORCE_SETTINGS, tenant_id=tenant.id)
    force = _as_file(replace(details_of(tenant), **asdict(names)))
    _names_free(force, but=tenant.id)
    if welsh_labels_required(tenant):
        said = tenant.name_in(current_language())
        if not names.completed_label_cy.strip():
            raise OnboardingError("completed_label_cy", _("Enter what the code on completion means in Welsh: "
                                                          "%(force)s works in Welsh.", force=said))
        if not names.not_completed_label_cy.strip():
            raise OnboardingError("not_completed_label_cy", _("Enter what the code on non-completion means in "
                                                              "Welsh: %(force)s works in Welsh.", force=said))
    columns = force_columns(force)
    changes = {name: (getattr(tenant, name), columns[name]) for name in ForceNames.__dataclass_fields__
               if getattr(tenant, name) != columns[name]}
    if changes:
        for name, (_before, value) in changes.items():
            setattr(tenant, name, value)
        db.session.flush()
        record("tenant.settings_changed", actor=actor, tenant_id=tenant.id, object_type="tenant",
               object_id=tenant.id, details={"before": {name: pair[0] for name, pair in changes.items()},
                                             "after": {name: pair[1] for name, pair in changes.items()}})
    return changes


def details_of(tenant: Tenant) -> ForceDetails:
    """A force's details as the details step shows them."""
    return ForceDetails(
        name=tenant.name, slug=tenant.slug, scheme_name=tenant.scheme_name, area=tenant.area,
        languages=list(tenant.languages), completed_code=tenant.completed_code,
        completed_label=tenant.completed_label, not_completed_code=tenant.not_completed_code,
        not_completed_label=tenant.not_completed_label, not_completed_action=tenant.not_completed_action.value,
        brand_colour=tenant.brand_colour, completed_label_cy=tenant.completed_label_cy or "",
        not_completed_label_cy=tenant.not_completed_label_cy or "", name_cy=tenant.name_cy or "")


def drafts() -> Sequence[Tenant]:
    """Every force being set up, oldest first."""
    return db.session.scalars(select(Tenant).where(Tenant.status == ForceStatus.DRAFT)
                              .order_by(Tenant.created_at, Tenant.id)).all()


def draft_by_slug(slug: str) -> Tenant | None:
    """The force being set up at this address, or None (none, or one that has opened)."""
    return db.session.scalar(select(Tenant).where(Tenant.slug == slug, Tenant.status == ForceStatus.DRAFT))


# ---------------------------------------------------------------- the first policy

@dataclass(frozen=True)
class PolicyTemplate:
    """A force whose policy in force may be copied, and that version."""

    force: Tenant
    version: PolicyVersion


def policy_templates(tenant: Tenant, *, today: date) -> list[PolicyTemplate]:
    """Every other force's policy in force on ``today``, by force name (published
    policies are the forces' public schemes: ``policies.published_policy_of``)."""
    found = []
    for other in db.session.scalars(select(Tenant).where(Tenant.id != tenant.id).order_by(Tenant.name)):
        version = policies.published_policy_of(other, today)
        if version is not None:
            found.append(PolicyTemplate(other, version))
    return found


def _neutral(kind: Kind, values: tuple[str, ...], minimum: int | None) -> Any:
    """A value of a catalogue field that rules nobody out by itself (a test's default)."""
    if kind is Kind.INT:
        return minimum or 0
    if kind is Kind.BOOL:
        return False
    return values[0] if kind is Kind.CHOICE else []


def blank_document() -> dict[str, Any]:
    """The blank policy: one pathway for adults found with drugs for their own
    use, two tests it passes, and a test default for every field of the
    national catalogue, so that whoever writes the force's policy starts from
    every fact a case can carry."""
    defaults = {name: _neutral(f.kind, f.values, f.minimum) for name, f in FIELDS.items()}
    defaults.update(age=25, offence="possession", personal_use=True, resident_in_force_area=True)
    return {
        "summary": "A starting point: replace it with the force's own scheme before the force opens.",
        "pathways": [{
            "id": "adult-education", "name": "Adult drug education", "kind": "adult_education",
            "description": "An assessment and education sessions.", "sessions": 1, "deadline_days": 90,
            "criteria": [
                {"id": "adult", "expression": "age >= 18", "reason": "The pathway is for people aged 18 or over."},
                {"id": "possession", "expression": "offence == 'possession'",
                 "reason": "The pathway covers possession only."},
                {"id": "personal-use", "expression": "personal_use",
                 "reason": "The quantity must be for personal use."},
            ],
        }],
        "test_defaults": defaults,
        "tests": [
            {"name": "an adult found with drugs for their own use", "facts": {}, "expect": "eligible",
             "pathway": "adult-education"},
            {"name": "under 18", "facts": {"age": 17}, "expect": "not_eligible", "unmet": ["adult"]},
        ],
    }


def _failing(version: PolicyVersion, today: date) -> list[TestOutcome]:
    return [t for t in policies.test_version(version, on=today) if not t.passed]


def _save_policy(tenant: Tenant, document: dict[str, Any], *, actor: Actor, origin: Origin,
                 origin_details: dict[str, Any] | None = None, today: date) -> PolicyVersion:
    """Save ``document`` as the draft's policy and check it passes its tests;
    then drop the offerings for pathways it no longer has."""
    try:
        version = policies.save_draft(tenant, document, actor=actor, origin=origin, origin_details=origin_details)
    except PolicyInvalid as error:
        raise OnboardingError("template", _("That policy cannot be used: %(problem)s",
                                            problem=error.problems[0])) from error
    if not policies.compiled(version).document.tests:
        raise OnboardingError("template", _("That policy has no test cases: a policy must show it works."))
    if failing := _failing(version, today):
        raise OnboardingError("template", _("That policy fails its own test %(test)s today: %(problems)s.",
                                            test=repr(failing[0].name), problems="; ".join(failing[0].problems)))
    pathways = {p.id for p in policies.compiled(version).document.pathways}
    db.session.execute(delete(Offering).where(Offering.tenant_id == tenant.id, Offering.pathway.not_in(pathways)))
    return version


def copy_policy(tenant: Tenant, source: Tenant, *, actor: Actor, today: date) -> PolicyVersion:
    """Make the draft force's policy a copy of ``source``'s policy in force on
    ``today`` (replacing the policy it had); offerings for pathways the copy
    lacks are dropped.

    Refuses a source that is the force itself or has no policy in force, and
    a copy that fails one of its tests today (a test that depends on the
    day); besides what every service here refuses.
    """
    require(actor, Action.ONBOARD_FORCE)
    _only_draft(tenant)
    version = None if source.id == tenant.id else policies.published_policy_of(source, today)
    if version is None:
        raise OnboardingError("template", _("%(force)s has no policy in force to copy.",
                                            force=source.name_in(current_language())))
    policy = _save_policy(tenant, dict(version.document), actor=actor, today=today,
                          origin=Origin.COPIED, origin_details={"force": source.name, "number": version.number})
    record("tenant.policy_copied", actor=actor, tenant_id=tenant.id, object_type="policy_version",
           object_id=policy.number, details={"from": source.slug, "version": version.number})
    return policy


def blank_policy(tenant: Tenant, *, actor: Actor, today: date) -> PolicyVersion:
    """Make the draft force's policy the blank one (``blank_document``), to be
    written in the policy console; offerings for pathways it lacks are
    dropped. Refuses what every service here refuses."""
    require(actor, Action.ONBOARD_FORCE)
    _only_draft(tenant)
    return _save_policy(tenant, blank_document(), actor=actor, today=today, origin=Origin.BLANK)


@dataclass(frozen=True)
class PolicyState:
    """The draft force's policy: its draft version (None: not chosen yet), its failing tests
    and, for a force that works in Welsh, what it lacks in Welsh said in a sentence ("" for nothing)."""

    version: PolicyVersion | None
    failing: list[TestOutcome] = field(default_factory=list)
    tests: int = 0
    welsh_missing: str = ""

    @property
    def ready(self) -> bool:
        return self.version is not None and self.tests > 0 and not self.failing and not self.welsh_missing


def policy_state(tenant: Tenant, *, today: date) -> PolicyState:
    """Where the draft force in scope's policy stands on ``today``."""
    version = policies.current_draft()
    if version is None:
        return PolicyState(None)
    document = policies.compiled(version).document
    return PolicyState(version, _failing(version, today), len(document.tests), policies.welsh_gaps(tenant, document))


def draft_pathways() -> list[Pathway]:
    """The pathways of the draft force in scope's policy (none before it has one)."""
    version = policies.current_draft()
    return list(policies.compiled(version).document.pathways) if version is not None else []


# ---------------------------------------------------------------- offerings

def offering_choices(tenant: Tenant) -> list[tuple[Pathway, list[Course]]]:
    """Each pathway of the draft force's policy with the courses that fit it
    (live, serving the force's area, of the pathway's kind and ages)."""
    return [(pathway, fitting_courses(tenant, pathway)) for pathway in draft_pathways()]


def offered() -> set[tuple[str, int]]:
    """The draft force in scope's offerings, as (pathway, course id)."""
    return {(o.pathway, o.course_id) for o in db.session.scalars(select(Offering))}


def set_offerings(tenant: Tenant, chosen: Collection[tuple[str, int]], *, actor: Actor) -> list[Offering]:
    """Make the draft force's offerings exactly ``chosen`` (pathway id, course id):
    missing ones are added, others dropped (a draft has no referrals).
    Their local details (venues, booking contact) are written later on the
    force's "Courses offered" page. Returns the offerings.

    Refuses a force with no policy yet, an empty choice where a course of
    the catalogue fits one of its pathways (a pathway no course fits is
    left without one), a pathway the policy lacks, and a course that is not in the catalogue, is retired or
    does not fit the pathway (``misfit``); besides what every service here
    refuses.
    """
    require(actor, Action.ONBOARD_FORCE)
    _only_draft(tenant)
    pathways = {p.id: p for p in draft_pathways()}
    if not pathways:
        raise OnboardingError("offerings", _("Choose the first policy first: offerings serve its pathways."))
    if not chosen and any(courses for _pathway, courses in offering_choices(tenant)):
        raise OnboardingError("offerings", _("Choose at least one course."))
    courses = {c.id: c for c in db.session.scalars(select(Course).where(Course.id.in_({c for _, c in chosen})))}
    for pathway_id, course_id in sorted(chosen):
        pathway, course = pathways.get(pathway_id), courses.get(course_id)
        if pathway is None:
            raise OnboardingError("offerings", _("Choose courses for the pathways of the force's policy."))
        if course is None or course.is_retired:
            raise OnboardingError("offerings", _("Choose courses from the catalogue that are not retired."))
        if why := misfit(course, area=tenant.area, kind=pathway.kind):
            raise OnboardingError("offerings", _("%(course)s cannot serve %(pathway)s: %(why)s",
                                                course=course.title, pathway=pathway.name, why=why))
    wanted = set(chosen)
    existing = list(db.session.scalars(select(Offering)))
    dropped = [o for o in existing if (o.pathway, o.course_id) not in wanted]
    if dropped:
        record("offerings.dropped", actor=actor, tenant_id=tenant.id,
               details={"dropped": [f"{o.course.slug} for {o.pathway}" for o in dropped]})
    for offering in dropped:
        db.session.delete(offering)
    db.session.flush()
    have = {(o.pathway, o.course_id) for o in existing}
    sync_offerings(tenant, [OfferingEntry(course=courses[c].slug, pathway=p)
                            for p, c in sorted(wanted - have)], actor=actor)
    return list(db.session.scalars(select(Offering).order_by(Offering.pathway, Offering.created_at)))


# ---------------------------------------------------------------- single sign-on (optional), the first force admin

def set_sign_on(tenant: Tenant, *, issuer: str, client_id: str, client_secret: str | None, compulsory: bool,
                new_people: str, actor: Actor) -> ForceSignOn:
    """Set the draft force's single sign-on (an optional step), as
    ``accounts.sso.configure_sign_on`` does and with its refusals (a secret
    left out keeps the one saved); besides what every service here refuses."""
    require(actor, Action.ONBOARD_FORCE)
    _only_draft(tenant)
    return configure_sign_on(tenant, issuer=issuer, client_id=client_id, client_secret=client_secret,
                             compulsory=compulsory, new_people=new_people, actor=actor)


def invite_first_admin(tenant: Tenant, *, email: str, name: str, actor: Actor) -> tuple[ForceInvitation, str]:
    """Invite the draft force's first force admin; the invitation and its token,
    shown once (``accounts.invitations.invite_to_force``, with its refusals:
    an invalid address, a blank name). Inviting again with the same address
    replaces the earlier link. The force's pages open to the person when the
    force opens. Refuses besides what every service here refuses."""
    require(actor, Action.ONBOARD_FORCE)
    _only_draft(tenant)
    return invite_to_force(tenant, email=email, name=name, role=Role.FORCE_ADMIN, actor=actor)


def first_admins() -> list[str]:
    """Who the draft force in scope's first force admins are, or are invited to be:
    force admins who are members, then invitations not taken up nor expired ("name (email)")."""
    members = [f"{m.user.name} ({m.user.email})" for m in db.session.scalars(
        select(ForceMembership).where(ForceMembership.role == Role.FORCE_ADMIN))]
    invited = [f"{i.name} ({i.email})" for i in db.session.scalars(
        select(ForceInvitation).where(ForceInvitation.role == Role.FORCE_ADMIN, ForceInvitation.used_at.is_(None),
                                      ForceInvitation.expires_at > utcnow()).order_by(ForceInvitation.created_at))]
    return members + invited


# ---------------------------------------------------------------- where a draft stands, finishing, discarding

class TaskStatus(enum.StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANNOT_START = "cannot_start"  # an earlier step must be done first
    OPTIONAL = "optional"  # not done, and need not be


@dataclass(frozen=True)
class Task:
    """One step of the set-up as the task list shows it."""

    key: str  # details, policy, offerings, sign_on, first_admin
    title: str
    status: TaskStatus
    hint: str = ""
    required: bool = True

    @property
    def done(self) -> bool:
        return self.status is TaskStatus.COMPLETED


# How a step that is not done is named in a refusal to open the force.
_UNDONE = {
    TaskStatus.NOT_STARTED: _l("not started"), TaskStatus.IN_PROGRESS: _l("in progress"),
    TaskStatus.CANNOT_START: _l("cannot start"),
}


def progress(tenant: Tenant, *, today: date) -> list[Task]:
    """The steps of the draft force in scope and where each stands."""
    state = policy_state(tenant, today=today)
    choose_policy = _("Choose the first policy")
    if state.version is None:
        policy = Task("policy", choose_policy, TaskStatus.NOT_STARTED)
    elif state.ready:
        policy = Task("policy", choose_policy, TaskStatus.COMPLETED,
                      ngettext("%(num)s test case passes; published when the force opens.",
                               "%(num)s test cases pass; published when the force opens.", state.tests))
    else:
        policy = Task("policy", choose_policy, TaskStatus.IN_PROGRESS,
                      _("It has no test cases yet: add them in the policy console.") if not state.tests
                      else _("Its tests do not pass yet: finish it in the policy console.") if state.failing
                      else _("Its Welsh is not all there yet: %(missing)s Add it in the policy console.",
                             missing=state.welsh_missing))
    count = len(_fitting_offerings(tenant))
    choose_courses = _("Choose the courses offered")
    if state.version is None:
        offerings = Task("offerings", choose_courses, TaskStatus.CANNOT_START, _("Choose the first policy first."))
    elif count:
        offerings = Task("offerings", choose_courses, TaskStatus.COMPLETED,
                         ngettext("%(num)s course offered.", "%(num)s courses offered.", count))
    elif not any(courses for _pathway, courses in offering_choices(tenant)):
        offerings = Task("offerings", choose_courses, TaskStatus.COMPLETED,
                         _("No course in the catalogue fits the policy’s pathways: none is offered."))
    else:
        offerings = Task("offerings", choose_courses, TaskStatus.NOT_STARTED)
    sign_on = sign_on_of(tenant)
    set_up_sign_on = _("Set up single sign-on")
    sso = (Task("sign_on", set_up_sign_on, TaskStatus.COMPLETED, _("With %(issuer)s.", issuer=sign_on.issuer),
                required=False)
           if sign_on is not None else
           Task("sign_on", set_up_sign_on, TaskStatus.OPTIONAL,
                _("Members sign in with the force's own identity provider."), required=False))
    admins = first_admins()
    invite_admin = _("Invite the first force admin")
    admin = (Task("first_admin", invite_admin, TaskStatus.COMPLETED, "; ".join(admins))
             if admins else Task("first_admin", invite_admin, TaskStatus.NOT_STARTED))
    return [Task("details", _("Name the force and its scheme"), TaskStatus.COMPLETED), policy, offerings, sso, admin]


def _fitting_offerings(tenant: Tenant) -> list[Offering]:
    """The draft's offerings that still fit its policy's pathways (the policy may have changed)."""
    pathways = {p.id: p for p in draft_pathways()}
    return [o for o in db.session.scalars(select(Offering))
            if o.pathway in pathways and not o.course.is_retired
            and misfit(o.course, area=tenant.area, kind=pathways[o.pathway].kind) is None]


def finish(tenant: Tenant, *, actor: Actor, today: date) -> PolicyVersion:
    """Open a draft force: publish its policy (in force from ``today``) and make
    it active, audited; returns the published version.

    Refuses a force with a required step not done (named: a policy that does
    not pass its tests, no offering that fits it, no force admin invited), an offering that no
    longer fits the policy, and what ``eligibility.services.publish`` and
    ``forces.services.change_status`` refuse; besides what every service
    here refuses. Nothing is changed then.
    """
    require(actor, Action.ONBOARD_FORCE)
    _only_draft(tenant)
    undone = [task for task in progress(tenant, today=today) if task.required and not task.done]
    if undone:
        steps = "; ".join(f"{t.title.lower()} ({_UNDONE.get(t.status, t.status.value.replace('_', ' '))})"
                          for t in undone)
        raise OnboardingError(undone[0].key, _("Finish every step first: %(steps)s.", steps=steps))
    fitting = _fitting_offerings(tenant)
    if len(fitting) != len(offered()):
        raise OnboardingError("offerings", _("Some offerings no longer fit the policy: choose the courses again."))
    state = policy_state(tenant, today=today)
    if state.version is None:  # progress has said so already; for the type checker
        raise OnboardingError("policy", _("Choose the first policy first."))
    try:
        published = policies.publish(tenant, state.version, effective_from=today, actor=actor, today=today,
                                     opening=True)
    except policies.PolicyError as error:
        raise OnboardingError("policy", error.message) from error
    change_status(tenant, ForceStatus.ACTIVE, actor=actor)
    record("tenant.onboarded", actor=actor, tenant_id=tenant.id, object_type="tenant", object_id=tenant.id,
           details={"policy_version": published.number, "offerings": len(fitting)})
    return published


def _force_models() -> list[type[Any]]:
    """Every force-owned model, children before parents (the order rows must be deleted in)."""
    by_table = {mapper.local_table: mapper.class_ for mapper in Base.registry.mappers}
    return [by_table[table] for table in reversed(Base.metadata.sorted_tables)
            if table.info.get(TENANT_SCOPED) and table in by_table]


def discard(tenant: Tenant, *, actor: Actor) -> None:
    """Delete a draft force and every row it has (its draft policy, offerings,
    members...), recorded in the audit log (which keeps the force's events).

    Refuses an actor who may not onboard forces (``AccessRefused``), and a
    force that is not a draft (``OnboardingError``: suspend an opened force
    instead; its history is kept).
    """
    require(actor, Action.ONBOARD_FORCE)
    if tenant.status is not ForceStatus.DRAFT:
        raise OnboardingError("force", _("%(force)s has opened: only a force being set up can be discarded. "
                                         "Suspend it instead.", force=tenant.name_in(current_language())))
    for model in _force_models():
        # Only tables that hold rows of it: some (an append-only ledger) refuse any delete, and a draft
        # has never written to them.
        if db.session.scalar(select(model.id).where(model.tenant_id == tenant.id).limit(1)) is not None:
            db.session.execute(delete(model).where(model.tenant_id == tenant.id))
    record("tenant.discarded", actor=actor, tenant_id=tenant.id, object_type="tenant", object_id=tenant.id,
           details={"slug": tenant.slug, "name": tenant.name})
    db.session.delete(tenant)
    db.session.flush()
