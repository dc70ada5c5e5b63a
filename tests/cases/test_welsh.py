"""A force that works in Welsh asks each person's language at intake; the provider reads it, and a
person who prefers Welsh is offered the courses given in Welsh first. A force that works in English
alone never asks."""

from __future__ import annotations

import html
import re
import tomllib
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale
from sqlalchemy import select

from diversion.accounts import services as accounts
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import Role, User
from diversion.cases.forms import ASKED_FACTS
from diversion.cases.models import Person
from diversion.cases.rules import outcome_named
from diversion.catalogue.models import Course, Offering
from diversion.config import REPO_ROOT
from diversion.eligibility.fields import FIELDS
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import ForceStatus, Tenant
from tests.cases.test_pages import INTAKE, TODAY, _form
from tests.conftest import World, csrf_token, sign_in

# An adult dealt with after arrest in North Wales, for an offence suitable out of court.
NORTH_WALES = {**INTAKE, "offence": "possession", "substances": ["cannabis"], "drug_class": "B",
               "personal_use": "yes", "user_dealer": "no", "on_bail": "no",
               "suitable_for_out_of_court_disposal": "yes"}


def _north_wales(app: Flask, world: World) -> int:
    """West Midlands' officer serves North Wales too; North Wales' id."""
    with app.app_context():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == "north-wales"))
        assert tenant is not None
        with scoped(tenant.id):
            accounts.add_membership(tenant, db.session.get(User, world.users["a_officer"].id), Role.OFFICER,
                                    actor=SYSTEM)
        db.session.commit()
        return tenant.id


def _language_of(app: Flask, tenant_id: int) -> list[str | None]:
    with app.app_context(), scoped(tenant_id):
        return list(db.session.scalars(select(Person.language)))


def test_north_wales_asks_the_persons_language_and_keeps_it(app: Flask, client: FlaskClient, world: World) -> None:
    tenant_id = _north_wales(app, world)
    sign_in(client, world.email("a_officer"))
    intake = client.get("/north-wales/encounters/new").text
    assert "Which language does the person prefer to be spoken to in?" in intake
    unanswered = _form(client, "/north-wales/encounters/new", NORTH_WALES)
    assert unanswered.status_code == 400
    assert "Select the language the person prefers" in unanswered.text
    assert _language_of(app, tenant_id) == []  # nothing recorded
    recorded = _form(client, "/north-wales/encounters/new", {**NORTH_WALES, "language": "cy"})
    assert recorded.status_code == 302
    assert _language_of(app, tenant_id) == ["cy"]
    decision = client.get(recorded.headers["Location"]).text
    offering = re.search(r'name="offering" type="radio" value="([^"]+)"', decision).group(1)
    referred = client.post(recorded.headers["Location"] + "/referrals",
                           data={"offering": offering, "csrf_token": csrf_token(decision)})
    case = client.get(referred.headers["Location"]).text
    assert re.search(r'data-testid="person-language">Cymraeg<', case)


def test_a_force_that_works_in_english_alone_does_not_ask(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("b_officer"))
    assert "Which language does the person prefer" not in client.get("/durham/encounters/new").text
    recorded = _form(client, "/durham/encounters/new", {**INTAKE, "language": "cy"})  # sent anyway: ignored
    assert recorded.status_code == 302
    assert _language_of(app, world.b.id) == [None]


def test_a_person_who_prefers_welsh_sees_the_courses_given_in_welsh_first(
        app: Flask, client: FlaskClient, world: World) -> None:
    tenant_id = _north_wales(app, world)
    with app.app_context():
        welsh = db.session.scalar(select(Course).where(Course.slug == "checkpoint-cymru-course"))
        assert welsh is not None
        english = Course(slug="evening-course", provider_id=welsh.provider_id, title="Evening course in English",
                         kinds=["deferred_prosecution"], format="group", sessions=2, delivery=["in_person"],
                         languages=["en"], areas=["north-wales"])
        db.session.add(english)
        db.session.flush()
        with scoped(tenant_id):
            # Offered before the Welsh course, so first for anyone who has not asked for Welsh.
            db.session.add(Offering(tenant_id=tenant_id, course_id=english.id, pathway="checkpoint-cymru",
                                    created_at=datetime.now(UTC) - timedelta(days=3650)))
            db.session.commit()
    sign_in(client, world.email("a_officer"))

    def courses(language: str) -> list[str]:
        recorded = _form(client, "/north-wales/encounters/new", {**NORTH_WALES, "language": language,
                                                                   "given_name": f"Rhys {language}"})
        decision = client.get(recorded.headers["Location"]).text
        labels = re.findall(r'for="offering[^"]*">\s*([^<]+?)\s*</label>', decision)
        return [label.split(" (")[0] for label in labels]

    assert courses("cy") == ["Checkpoint Cymru education course", "Evening course in English"]
    assert courses("en") == ["Evening course in English", "Checkpoint Cymru education course"]
    assert TODAY  # the intake is dated today


def test_a_force_names_its_outcomes_in_welsh_where_its_file_gives_them(
        app: Flask, client: FlaskClient, world: World) -> None:
    _north_wales(app, world)
    sign_in(client, world.email("a_officer"))
    welsh = client.get("/north-wales/?lang=cy").text
    assert "Dim camau pellach (Canlyniad 22)" in welsh
    assert "Mae&#39;r achos yn mynd i&#39;r llys" in welsh
    english = client.get("/north-wales/?lang=en").text
    assert "No further action (Outcome 22)" in english
    assert "Dim camau pellach" not in english


def test_a_force_is_named_in_welsh_where_its_file_names_it(app: Flask, client: FlaskClient, world: World) -> None:
    """North Wales' file gives its Welsh name: a reader of Welsh reads it on the force's pages, in what they
    are told and on the page of a force that is closed; a reader of English reads the English name."""
    tenant_id = _north_wales(app, world)
    sign_in(client, world.email("a_officer"))
    welsh = client.get("/north-wales/?lang=cy").text
    assert "Heddlu Gogledd Cymru · Checkpoint Cymru" in welsh
    assert "North Wales Police" not in welsh
    english = client.get("/north-wales/?lang=en").text
    assert "North Wales Police · Checkpoint Cymru" in english
    assert "Heddlu Gogledd Cymru" not in english
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        assert tenant is not None
        tenant.status = ForceStatus.SUSPENDED
        db.session.commit()
    closed = client.get("/north-wales/?lang=cy")
    assert closed.status_code == 403
    assert "Mae tudalennau Heddlu Gogledd Cymru ar gau am y tro." in html.unescape(closed.text)


def test_an_outcome_whose_code_the_force_no_longer_uses_keeps_the_label_it_was_given() -> None:
    force = Tenant(completed_code="outcome-22", completed_label="No further action",
                   completed_label_cy="Dim camau pellach", not_completed_code="court",
                   not_completed_label="Court", not_completed_label_cy=None)
    assert outcome_named("No further action", "outcome-22", force, "cy") == "Dim camau pellach"
    assert outcome_named("No further action", "outcome-22", force, "en") == "No further action"
    assert outcome_named("Court", "court", force, "cy") == "Court"  # no Welsh given for it
    assert outcome_named("Charged", "old-code", force, "cy") == "Charged"
    assert outcome_named(None, None, force, "cy") == ""


def test_the_intake_form_asks_every_fact_in_welsh(app: Flask, client: FlaskClient, world: World) -> None:
    """The form's questions and answers are made once, at import: each is read in the reader's language."""
    _north_wales(app, world)
    sign_in(client, world.email("a_officer"))
    page = html.unescape(re.sub(r"<[^>]+>", " ", client.get("/north-wales/encounters/new?lang=cy").text))
    with app.test_request_context(), force_locale("cy"):
        asked = [(str(FIELDS[name].title), *(str(FIELDS[name].value_title(v)) for v in FIELDS[name].values))
                 for name in ASKED_FACTS]
    with app.test_request_context(), force_locale("en"):
        english = [(str(FIELDS[name].title), *(str(FIELDS[name].value_title(v)) for v in FIELDS[name].values))
                   for name in ASKED_FACTS]
    for welsh_words, english_words in zip(asked, english, strict=True):
        for welsh, words in zip(welsh_words, english_words, strict=True):
            assert welsh in page, welsh
            if welsh != words:
                assert words not in page, words


def test_the_policy_page_gives_the_forces_own_welsh(app: Flask, client: FlaskClient, world: World) -> None:
    policy = tomllib.loads((REPO_ROOT / "tenants" / "north-wales.toml").read_text())["policy"]
    exclusion, pathway = policy["exclusions"][0], policy["pathways"][0]
    _north_wales(app, world)
    sign_in(client, world.email("a_officer"))
    welsh = html.unescape(client.get("/north-wales/policy/?lang=cy").text)
    assert policy["summary_cy"].strip() in welsh
    assert exclusion["reason_cy"] in welsh
    assert exclusion["reason"] not in welsh
    assert pathway["name_cy"] in welsh
    assert pathway["criteria"][0]["reason_cy"] in welsh
    english = html.unescape(client.get("/north-wales/policy/?lang=en").text)
    assert exclusion["reason"] in english
    assert pathway["name"] in english


def test_what_is_refused_is_said_in_welsh(app: Flask, client: FlaskClient, world: World) -> None:
    """The refusals the services word (an intake's dates, the cases list's search) reach a reader of
    Welsh in Welsh, with dates in Welsh."""
    _north_wales(app, world)
    sign_in(client, world.email("a_officer"))
    client.get("/north-wales/?lang=cy")
    ahead = TODAY + timedelta(days=3)
    future = html.unescape(_form(client, "/north-wales/encounters/new", {
        **NORTH_WALES, "language": "cy", "offence_on": [str(ahead.day), str(ahead.month), str(ahead.year)]}).text)
    assert "Ni all dyddiad y drosedd fod yn y dyfodol." in future
    assert "cannot be in the future" not in future
    early = html.unescape(_form(client, "/north-wales/encounters/new", {
        **NORTH_WALES, "language": "cy", "date_of_birth": ["1", "1", "1890"]}).text)
    assert "Rhaid i'r dyddiad geni fod ar 1 Ionawr 1900 neu ar ôl hynny." in early
    search = html.unescape(client.get("/north-wales/cases/?from=1999-12-31&surname=Jones").text)
    assert "Rhaid i'r dyddiad trosedd cynharaf fod ar 1 Ionawr 2000 neu ar ôl hynny" in search
    assert "Rhowch y dyddiad geni hefyd" in search
    spoilt = html.unescape(_form(client, "/north-wales/encounters/new", {
        **NORTH_WALES, "language": "cy", "surname": "Jones\x07"}).text)
    assert "Cyfenw: ni chaiff gynnwys nodau rheoli (fel beit NUL)" in spoilt


def _options(page: str, name: str) -> list[str]:
    """The labels of a select's options, as the page shows them."""
    found = re.search(rf'<select class="govuk-select" id="{name}" name="{name}">(.*?)</select>', page, re.DOTALL)
    assert found is not None, name
    return [html.unescape(label).strip() for label in re.findall(r"<option[^>]*>([^<]*)</option>", found.group(1))]


def test_the_cases_lists_filters_offer_their_choices_in_welsh(app: Flask, client: FlaskClient, world: World) -> None:
    """Every order the cases list offers is named in Welsh to a reader of Welsh, and each course by its
    Welsh title (as the course's other pages name it); a reader of English reads them in English."""
    _north_wales(app, world)
    sign_in(client, world.email("a_officer"))
    welsh = client.get("/north-wales/cases/?lang=cy").text
    assert _options(welsh, "sort") == [
        "I weddu i’r chwiliad", "Y cyfeirnod mwyaf diweddar yn gyntaf", "Y cyfeirnod hynaf yn gyntaf",
        "Y drosedd ddiweddaraf yn gyntaf", "Y drosedd gynharaf yn gyntaf", "Y dyddiad dyledus cynharaf yn gyntaf",
        "Y dyddiad dyledus diweddaraf yn gyntaf", "Statws yr atgyfeiriad"]
    assert _options(welsh, "course") == ["Unrhyw gwrs", "Cwrs addysg Checkpoint Cymru (Cymraeg a Saesneg)"]
    english = client.get("/north-wales/cases/?lang=en").text
    assert _options(english, "sort") == [
        "To suit the search", "Newest reference first", "Oldest reference first", "Latest offence first",
        "Earliest offence first", "Due soonest first", "Due latest first", "Referral state"]
    assert _options(english, "course") == ["Any course", "Checkpoint Cymru education course (Welsh and English)"]
