"""The force's cases list: find any case by reference, PNC ID, surname and
date of birth, or date of birth, filter and sort it (``cases.search``)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import g, render_template, request
from flask_login import current_user
from sqlalchemy import select

from diversion.accounts.access import Action, requires_force_action
from diversion.accounts.models import ForceMembership, Role, User
from diversion.cases import search as finding
from diversion.cases import services
from diversion.cases.models import State
from diversion.catalogue.models import Course, Offering
from diversion.eligibility import services as eligibility
from diversion.eligibility.models import Outcome
from diversion.extensions import db
from diversion.listing import total_text
from diversion.tenancy.web import force_blueprint
from diversion.words import current_language, in_language

bp = force_blueprint("case_list", __name__)

FILTERS = ("q", "surname", "born-day", "born-month", "born-year", "decision", "pathway", "state", "overdue", "course",
           "officer", "from", "to")


def _choices() -> dict[str, list[tuple[str, str]]]:
    """The values each filter offers, as (value, label): the force's pathways, courses and officers."""
    today = datetime.now(UTC).date()
    language = current_language()
    pathways = [(p.id, p.name_in(language)) for p in eligibility.pathways_in_force(today)]
    offered = db.session.execute(select(Course.id, Course.title, Course.title_cy)
                                 .join(Offering, Offering.course_id == Course.id).distinct()).tuples().all()
    # Each course by its title in the reader's language (its Welsh title, where it has one), in that order.
    titles = {str(course): in_language(title, title_cy, language) for course, title, title_cy in offered}
    courses = sorted(titles.items(), key=lambda item: item[1].casefold())
    officers = db.session.execute(
        select(User.id, User.name).join(ForceMembership, ForceMembership.user_id == User.id)
        .where(ForceMembership.role.in_((Role.OFFICER, Role.SUPERVISOR))).distinct().order_by(User.name)).all()
    return {
        "decision": [(o.value, o.label) for o in Outcome],
        "pathway": pathways,
        "state": [(s.value, s.label) for s in State],
        "course": courses,
        "officer": [(str(u.id), u.name) for u in officers],
        "sort": [(value, str(label)) for value, label in finding.SORTS.items()],
    }


@bp.route("/cases/")
@requires_force_action(Action.READ_CASES)
def index() -> tuple[str, int] | str:
    """Every case of the force, newest first: searched, filtered, sorted and paginated from the address."""
    today = datetime.now(UTC).date()
    search = finding.read_search(request.args)
    page = finding.page(g.tenant, search, today=today)
    shown = finding.rows(page.items, force=g.tenant.name_in(current_language()))
    services.viewed(g.tenant, "cases.listed", actor=current_user,
                    details={"cases": len(shown), "searched": search.searching, "filtered": search.filtered})
    choices = _choices()
    pathway_names = dict(choices["pathway"])
    noun = "referral" if search.sort in finding.BY_REFERRAL else "case"  # a list by due date or state is of referrals
    html = render_template("cases/cases.html", page=page, rows=shown, search=search, choices=choices,
                           pathway_names=pathway_names, total=total_text(page, noun), today=today,
                           here={key: value for key, value in request.args.items() if key in FILTERS})
    return (html, 400) if search.problems else html
