"""The national terms the catalogue is described in, shared by every force.

Pathway kinds
    What sort of intervention a pathway is, whatever a force calls it. A
    course lists the kinds it serves; a force's pathway may name its kind in
    the policy (``kind = "adult_education"`` under ``[[policy.pathways]]``).
    Each kind has the national age band it is meant for, so that a youth
    course is not offered on an adult pathway by mistake.

How a force's pathway and a course fit (``fits``)
    A course may serve a pathway when all of these hold:

    - the course is not retired;
    - the force's area is among the areas the course serves;
    - if the pathway names a kind, the course serves that kind, and the
      course's age range overlaps the kind's age band.

    A pathway that names no kind is matched on the first two only: the force
    has not said what it is, so the force admin's choice is trusted.

Areas
    The 43 territorial police force areas of England and Wales. A force on
    the platform is served when its area (``Tenant.area``, by default its
    address) is one of the areas a course lists. Places within an area (a town, a venue) belong to the
    force's offering, not to the course.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from diversion.words import Described

# The age of criminal responsibility in England and Wales, and an upper bound
# that stands for "no upper limit".
YOUNGEST_AGE = 10
OLDEST_AGE = 120


class PathwayKind(enum.StrEnum):
    ADULT_EDUCATION = "adult_education"
    YOUTH_INTERVENTION = "youth_intervention"
    DEFERRED_PROSECUTION = "deferred_prosecution"
    USER_DEALER = "user_dealer"
    TREATMENT = "treatment"


@dataclass(frozen=True)
class KindInfo(Described):
    title: LazyString  # the kind's national name (``label``)
    explanation: LazyString
    min_age: int
    max_age: int


KINDS: dict[PathwayKind, KindInfo] = {
    PathwayKind.ADULT_EDUCATION: KindInfo(
        _l("Adult drug education"),
        _l("An assessment and education sessions for adults found with drugs for their own use."),
        18, OLDEST_AGE),
    PathwayKind.YOUTH_INTERVENTION: KindInfo(
        _l("Young people's early intervention"), _l("A separate route for under 18s that keeps them in education."),
        YOUNGEST_AGE, 17),
    PathwayKind.DEFERRED_PROSECUTION: KindInfo(
        _l("Deferred prosecution contract"),
        _l("A contract of conditions (e.g. for four months) supervised by a navigator; prosecution if broken."),
        18, OLDEST_AGE),
    PathwayKind.USER_DEALER: KindInfo(
        _l("User-dealer pathway"), _l("For people who sell small amounts to fund their own use."), 18, OLDEST_AGE),
    PathwayKind.TREATMENT: KindInfo(
        _l("Treatment referral"), _l("An assessment and a referral into drug treatment."), YOUNGEST_AGE, OLDEST_AGE),
}


class Delivery(enum.StrEnum):
    IN_PERSON = "in_person"
    ONLINE = "online"


DELIVERY_LABELS = {Delivery.IN_PERSON: _l("In person"), Delivery.ONLINE: _l("Online")}


class CourseFormat(enum.StrEnum):
    GROUP = "group"
    ONE_TO_ONE = "one_to_one"
    GROUP_AND_ONE_TO_ONE = "group_and_one_to_one"
    CONTRACT = "contract"


FORMAT_LABELS = {
    CourseFormat.GROUP: _l("Group sessions"),
    CourseFormat.ONE_TO_ONE: _l("One-to-one sessions"),
    CourseFormat.GROUP_AND_ONE_TO_ONE: _l("Group and one-to-one sessions"),
    CourseFormat.CONTRACT: _l("Conditional contract with a navigator"),
}

# The languages a course can be delivered in (the platform's languages).
COURSE_LANGUAGES = {"en": _l("English"), "cy": _l("Welsh")}

# Territorial police force areas of England and Wales, by address.
AREAS: dict[str, str] = {
    "avon-and-somerset": "Avon and Somerset",
    "bedfordshire": "Bedfordshire",
    "cambridgeshire": "Cambridgeshire",
    "cheshire": "Cheshire",
    "city-of-london": "City of London",
    "cleveland": "Cleveland",
    "cumbria": "Cumbria",
    "derbyshire": "Derbyshire",
    "devon-and-cornwall": "Devon and Cornwall",
    "dorset": "Dorset",
    "durham": "Durham",
    "dyfed-powys": "Dyfed-Powys",
    "essex": "Essex",
    "gloucestershire": "Gloucestershire",
    "greater-manchester": "Greater Manchester",
    "gwent": "Gwent",
    "hampshire": "Hampshire and Isle of Wight",
    "hertfordshire": "Hertfordshire",
    "humberside": "Humberside",
    "kent": "Kent",
    "lancashire": "Lancashire",
    "leicestershire": "Leicestershire",
    "lincolnshire": "Lincolnshire",
    "merseyside": "Merseyside",
    "metropolitan": "Metropolitan Police (London)",
    "norfolk": "Norfolk",
    "north-wales": "North Wales",
    "north-yorkshire": "North Yorkshire",
    "northamptonshire": "Northamptonshire",
    "northumbria": "Northumbria",
    "nottinghamshire": "Nottinghamshire",
    "south-wales": "South Wales",
    "south-yorkshire": "South Yorkshire",
    "staffordshire": "Staffordshire",
    "suffolk": "Suffolk",
    "surrey": "Surrey",
    "sussex": "Sussex",
    "thames-valley": "Thames Valley",
    "warwickshire": "Warwickshire",
    "west-mercia": "West Mercia",
    "west-midlands": "West Midlands",
    "west-yorkshire": "West Yorkshire",
    "wiltshire": "Wiltshire",
}


def kind_label(kind: str | None) -> str:
    """The national name of a kind (or the raw value, for one no longer known)."""
    try:
        return KINDS[PathwayKind(kind)].label if kind else gettext("Not stated")
    except ValueError:
        return str(kind)


def ages_overlap(low: int, high: int | None, kind: PathwayKind) -> bool:
    """Whether the ages ``low``..``high`` (None: no upper limit) meet the kind's band."""
    band = KINDS[kind]
    return low <= band.max_age and (high if high is not None else OLDEST_AGE) >= band.min_age
