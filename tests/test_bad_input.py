"""Bad input of every shape gets a clear refusal and changes nothing; never a 500.

The shapes are those that once reached the database or a template unchecked:
a NUL byte (PostgreSQL cannot store one) or another control character in any
text, a date sent as one value instead of three, a number in an address too
large for the integer columns ids live in, documents nested absurdly deep, control
characters in an address. The forms are not listed by hand: every page of
the access table (``tests/test_access_matrix.py``) is opened as a principal
allowed to see it, in the state its line sets up, and every form found on it
is sent once per field with that field spoilt. A new form is walked the day
it appears. The same runs on SQLite and PostgreSQL: on SQLite, where a NUL
would be stored happily, the test still demands the refusal.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from diversion.accounts.access import SYSTEM
from diversion.cases.importer import ImportInvalid, check_file
from diversion.cases.models import Encounter, Referral
from diversion.catalogue.models import Provider
from diversion.config import REPO_ROOT
from diversion.extensions import db
from diversion.forces.files import ForceFilesInvalid, read_force_files
from diversion.inputs import MAX_DOCUMENT_DEPTH
from diversion.jsonapi import tokens as api_tokens
from diversion.jsonapi import tokens as provider_tokens
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests import test_access_matrix as matrix
from tests.conftest import World, csrf_token, make_app, sign_in

NUL = "spoilt\x00value"
BELL = "spoilt\x07value"
HUGE = "99999999999999999999"  # beyond a signed 64-bit integer
BEYOND_IDS = ("2147483648", "9223372036854775807", HUGE)  # beyond the 32-bit integer columns of ids
Setup = Callable[[Flask, World], None]


# ---------------------------------------------------------------- the forms on a page

@dataclass
class FormField:
    name: str
    kind: str  # text (any typed-in value), textarea, choice (radio, checkbox, select), hidden
    values: list[str] = field(default_factory=list)  # what the page has filled in or chosen
    first_option: str | None = None  # of a group of radios


@dataclass
class PageForm:
    action: str
    method: str
    fields: dict[str, FormField] = field(default_factory=dict)

    def add(self, name: str, kind: str, value: str | None) -> None:
        found = self.fields.setdefault(name, FormField(name, kind))
        if value is not None:
            found.values.append(value)

    @property
    def typed(self) -> list[FormField]:
        """The fields a person types into (a date's three boxes are one field)."""
        return [f for f in self.fields.values() if f.kind in ("text", "textarea") and f.name != "csrf_token"]


class FormReader(HTMLParser):
    """Every <form> of a page with its fields and what the page filled in."""

    TYPED = frozenset({"text", "email", "password", "search", "tel", "url", "number", "time", "date"})

    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.forms: list[PageForm] = []
        self._form: PageForm | None = None
        self._textarea: str | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = PageForm(action=a.get("action") or self.page_url, method=(a.get("method") or "get").lower())
            self.forms.append(self._form)
        if self._form is None or not a.get("name"):
            if tag == "option" and self._select is not None and self._form is not None:
                self._option(a)
            return
        name = a["name"]
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind in self.TYPED:
                self._form.add(name, "text", a.get("value", ""))
            elif kind in ("radio", "checkbox"):
                self._form.add(name, "choice", a.get("value", "on") if "checked" in a else None)
                if kind == "radio" and self._form.fields[name].first_option is None:
                    self._form.fields[name].first_option = a.get("value", "on")
            elif kind == "hidden":
                self._form.add(name, "hidden", a.get("value", ""))
        elif tag == "textarea":
            self._textarea = name
            self._form.add(name, "textarea", None)
            self._form.fields[name].values.append("")
        elif tag == "select":
            self._select, self._select_first, self._select_chosen = name, None, False
            self._form.add(name, "choice", None)

    def _option(self, a: dict[str, str]) -> None:
        assert self._form is not None
        assert self._select is not None
        value = a.get("value", "")
        if self._select_first is None and value:
            self._select_first = value
        if "selected" in a:
            self._form.fields[self._select].values = [value]
            self._select_chosen = True

    def handle_data(self, data: str) -> None:
        if self._form is not None and self._textarea is not None:
            self._form.fields[self._textarea].values[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select" and self._form is not None and self._select is not None:
            if not self._select_chosen and self._select_first is not None:
                self._form.fields[self._select].values = [self._select_first]
            self._select = None


def forms_on(html: str, page_url: str) -> list[PageForm]:
    reader = FormReader(page_url)
    reader.feed(html)
    return reader.forms


# ---------------------------------------------------------------- the pages, in their states

def _first_allowed(route: matrix.Route) -> str | None:
    preference = ("force_admin", "supervisor", "officer", "platform_admin", "provider_staff", "druglink_staff",
                  "national_lead")
    return next((p for p in preference if p in route.allowed), None)


@dataclass(frozen=True)
class Page:
    name: str
    principal: str
    url: Callable[[World], str]
    setup: Setup | None = None


def _pages() -> list[Page]:
    pages = [Page(route.endpoint, principal, route.url, route.setup) for route in matrix.ROUTES
             if route.method == "GET" and not route.api and (principal := _first_allowed(route)) is not None
             and route.endpoint not in ("static", "public.health") and route.allowed[principal].status == 200]
    # States the access table does not open, where more forms appear.
    referral = lambda _w: f"/provider/referrals/{matrix.CASE.get('referral', matrix.NO_ID)}"  # noqa: E731
    case = lambda _w: f"/west-midlands/cases/{matrix.CASE.get('encounter', matrix.NO_ID)}"  # noqa: E731
    pages += [
        Page("provider.referral (accepted)", "provider_staff", referral, matrix._accepted_referral),
        Page("provider.referral (booked)", "provider_staff", referral, matrix._booked_session),
        Page("cases.case (referred)", "officer", case, matrix._record_referral),
        Page("cases.decision (supervisor)", "supervisor",
             lambda _w: f"/west-midlands/decisions/{matrix.CASE.get('decision', matrix.NO_ID)}", matrix._record_case),
        Page("policy.draft (saved)", "force_admin", lambda w: f"/{w.a.slug}/policy/draft", matrix._save_draft),
        Page("provider_integrations.index (endpoint)", "provider_staff", lambda _w: matrix.INTEGRATIONS,
             matrix._provider_endpoint),
    ]
    return pages


PAGES = _pages()


def _open(app: Flask, client: FlaskClient, world: World, page: Page) -> tuple[str, str]:
    user = matrix.PRINCIPALS[page.principal]
    assert user is not None
    assert sign_in(client, world.email(user)).status_code == 302
    if page.setup is not None:
        page.setup(app, world)
    url = page.url(world)
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return url, response.text


def _valid(app: Flask, world: World, form: PageForm) -> dict[str, Any]:
    """What the page filled in (or the first of radios it left unchosen), completed by the access
    table's valid submission for the form's action."""
    data: dict[str, Any] = {f.name: list(f.values) or [f.first_option] for f in form.fields.values()
                            if f.values or f.first_option is not None}
    path = urlsplit(form.action).path
    try:
        endpoint, _args = app.url_map.bind("localhost").match(path, method="POST")
    except HTTPException:  # not a POST route: nothing more to add
        return data
    route = next((r for r in matrix.ROUTES if r.key == (endpoint, "POST")), None)
    if route is not None:
        data.update(route.data(app, world))
    return data


def _send(client: FlaskClient, form: PageForm, data: dict[str, Any], page_html: str) -> Any:
    if form.method == "post":
        return client.post(form.action, data={**data, "csrf_token": csrf_token(page_html)})
    return client.get(form.action, query_string=data)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_form_refuses_control_characters_field_by_field(
    app: Flask, client: FlaskClient, world: World, page: Page
) -> None:
    url, html = _open(app, client, world, page)
    spoilt = 0
    for form in forms_on(html, url):
        for target in form.typed:
            for bad in (NUL, BELL):
                data = _valid(app, world, form)
                data[target.name] = [bad] * max(len(target.values), 1)
                response = _send(client, form, data, html)
                where = f"{form.method.upper()} {form.action} with {target.name}={bad!r}"
                assert response.status_code == 400, (where, response.status_code, response.text[:300])
                assert "control characters" in response.text, (where, response.text[:2000])
                spoilt += 1
    if page.name in ("cases.intake", "provider.referral (accepted)", "policy.draft (saved)"):
        assert spoilt > 0, "the walk found no field to spoil on a page known to have some"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_date_refuses_one_value_instead_of_three(
    app: Flask, client: FlaskClient, world: World, page: Page
) -> None:
    url, html = _open(app, client, world, page)
    for form in forms_on(html, url):
        dates = [f for f in form.fields.values() if f.kind == "text" and len(f.values) == 3]
        for target in dates:
            for one in ("1", "1 1 2020"):
                data = _valid(app, world, form)
                data[target.name] = one
                response = _send(client, form, data, html)
                assert response.status_code == 400, (form.action, target.name, one, response.text[:300])
                assert "must include a day, a month and a year" in response.text


def test_the_intake_form_names_each_spoilt_field(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("a_officer"))
    page = client.get("/west-midlands/encounters/new").text
    data = {**matrix._intake_form(app, world), "surname": "Smith\x00", "csrf_token": csrf_token(page)}
    response = client.post("/west-midlands/encounters/new", data=data)
    assert response.status_code == 400
    assert "Surname cannot contain control characters" in response.text
    data.update(surname="Smith", given_name="Al\nex")
    response = client.post("/west-midlands/encounters/new", data=data)
    assert "Given name must be on one line" in response.text
    data.update(given_name="Alex", address="1 High Street\r\nBirmingham\x00")
    assert "Address cannot contain control characters" in client.post("/west-midlands/encounters/new",
                                                                      data=data).text
    data.update(address="1 High Street\r\nBirmingham\tB1 1AA")
    assert client.post("/west-midlands/encounters/new", data=data).status_code == 302
    with app.app_context(), scoped(world.a.id):
        assert db.session.scalar(select(func.count()).select_from(Encounter)) == 1


# ---------------------------------------------------------------- addresses

def _int_rules(app: Flask) -> list[str]:
    return sorted({rule.endpoint for rule in app.url_map.iter_rules()
                   if any(isinstance(c, IntegerConverter) for c in rule._converters.values())})


def test_every_whole_number_in_an_address_beyond_the_id_columns_is_not_found(
    app: Flask, client: FlaskClient, world: World
) -> None:
    endpoints = _int_rules(app)
    assert endpoints, "no address takes a whole number: this test has nothing to check"
    for endpoint in endpoints:
        for route in (r for r in matrix.ROUTES if r.endpoint == endpoint):
            principal = _first_allowed(route)
            assert principal is not None
            other = app.test_client()
            sign_in(other, world.email(matrix.PRINCIPALS[principal] or ""))
            if route.setup is not None:
                route.setup(app, world)
            rule = next(r for r in app.url_map.iter_rules(endpoint))
            numbers = [name for name, c in rule._converters.items() if isinstance(c, IntegerConverter)]
            url = route.url(world)
            path = urlsplit(url).path
            _, args = app.url_map.bind("localhost").match(path, method=route.method)
            for name in numbers:
                for huge in BEYOND_IDS:
                    huge_path = path.replace(f"/{args[name]}", f"/{huge}", 1)
                    token = csrf_token(other.get("/sign-in").text)
                    response = other.get(huge_path) if route.method == "GET" else \
                        other.post(huge_path, data={"csrf_token": token})
                    assert response.status_code == 404, (route.key, huge_path, response.status_code)


def test_a_huge_version_number_in_the_query_is_a_clear_refusal(client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("a_force_admin"))
    for huge in BEYOND_IDS:
        for query in (f"from={huge}&to=1", f"from=1&to={huge}"):
            response = client.get(f"/west-midlands/policy/versions/diff?{query}")
            assert response.status_code == 400
            assert "Choose two versions to compare." in response.text


def test_control_characters_in_an_address(client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("provider_staff"))
    assert client.get("/west%00midlands/").status_code == 404
    assert client.get("/west-midlands%01/policy/").status_code == 404
    response = client.get("/provider/?force=%00")
    assert response.status_code == 400
    assert "“force” value cannot contain control characters" in response.text
    assert client.get("/provider/?state=ok%0a").status_code == 400


# ---------------------------------------------------------------- documents

def _nested(depth: int) -> str:
    return "x = " + "[" * depth + "1" + "]" * depth + "\n"


@pytest.mark.parametrize("depth", [MAX_DOCUMENT_DEPTH + 1, 50_000])
def test_a_policy_draft_nested_too_deep_is_refused(
    app: Flask, client: FlaskClient, world: World, depth: int
) -> None:
    sign_in(client, world.email("a_force_admin"))
    page = client.get("/west-midlands/policy/draft").text
    response = client.post("/west-midlands/policy/draft",
                           data={"document": _nested(depth), "note": "", "csrf_token": csrf_token(page)})
    assert response.status_code == 400
    assert f"nests tables or lists more than {MAX_DOCUMENT_DEPTH} levels deep" in response.text


def test_a_policy_draft_with_a_nul_escape_is_refused(client: FlaskClient, world: World) -> None:
    sign_in(client, world.email("a_force_admin"))
    page = client.get("/west-midlands/policy/draft").text
    response = client.post("/west-midlands/policy/draft",
                           data={"document": 'summary = "a\\u0000b"\n', "note": "", "csrf_token": csrf_token(page)})
    assert response.status_code == 400
    assert "summary cannot contain control characters" in response.text


def _folder_with(tmp_path: Path, slug: str, change: Callable[[str], str]) -> Path:
    folder = tmp_path / "tenants"
    shutil.copytree(REPO_ROOT / "tenants", folder)
    path = folder / f"{slug}.toml"
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


@pytest.mark.parametrize(("change", "key", "problem"), [
    (lambda text: text.replace('name = "Durham Constabulary"', 'name = "Durham\\u0000 Constabulary"'), "name",
     "cannot contain control characters"),
    (lambda text: text + _nested(50_000), "(file)", "levels deep"),
    (lambda text: text + "padding = '" + "x" * 250_000 + "'\n", "(file)", "larger than"),
], ids=["nul-escape", "deep", "large"])
def test_a_force_file_with_bad_input_names_the_problem_and_applies_nothing(
    tmp_path: Path, change: Callable[[str], str], key: str, problem: str
) -> None:
    folder = _folder_with(tmp_path, "durham", change)
    with pytest.raises(ForceFilesInvalid) as refused:
        read_force_files(folder)
    assert [(p.path.name, p.key) for p in refused.value.problems] == [("durham.toml", key)]
    assert problem in refused.value.problems[0].message


def test_tenants_sync_with_a_nul_changes_nothing(database: Any, world: World, tmp_path: Path) -> None:
    folder = _folder_with(tmp_path, "durham",
                          lambda text: text.replace('name = "Durham Constabulary"', 'name = "Dur\\u0000ham"'))
    app = make_app(database, TENANTS_DIR=folder)
    result = app.test_cli_runner().invoke(args=["tenants", "sync"])
    assert result.exit_code != 0
    assert "durham.toml: name: cannot contain control characters" in result.output
    assert "Traceback" not in result.output
    with app.app_context():
        assert db.session.scalar(select(Tenant.name).where(Tenant.slug == "durham")) == "Durham Constabulary"
        db.session.remove()
        db.engine.dispose()


def test_an_import_row_with_a_nul_is_a_problem_of_its_row(app: Flask, world: World, tmp_path: Path) -> None:
    from tests.cases.test_import import DURHAM_COURSE, row, write  # the import tests' own valid rows

    path = write(tmp_path / "history.csv", [row(surname="Smi\x00th"),
                                            row(course=DURHAM_COURSE + "\x00", referral_state="offered"),
                                            row(address="1 High Street\r\nDurham\x07")])
    with app.app_context(), scoped(world.b.id):
        tenant = db.session.get(Tenant, world.b.id)
        assert tenant is not None
        with pytest.raises(ImportInvalid) as refused:
            check_file(tenant, path, today=datetime.now(UTC).date())
    found = {(p.row, p.column): p.problem for p in refused.value.problems}
    assert "control characters" in found[(2, "surname")]
    assert "control characters" in found[(3, "course")]
    assert "control characters" in found[(4, "address")]


# ---------------------------------------------------------------- signing in

def test_a_nul_in_the_sign_in_email_is_refused_and_recorded(database: Any, client: FlaskClient,
                                                            world: World) -> None:
    from tests.audit.test_audit import _events  # every event, as the auditor reads them

    page = client.get("/sign-in").text
    response = client.post("/sign-in", data={"email": "someone@example.org\x00", "password": "x" * 12,
                                             "csrf_token": csrf_token(page)})
    assert response.status_code == 400
    assert "Email address cannot contain control characters" in response.text
    failed = [e for e in _events(database) if e["action"] == "auth.sign_in_failed"]
    assert [(e["actor_email"], e["details"]) for e in failed] == [("someone@example.org\ufffd",
                                                                   {"reason": "malformed"})]


# ---------------------------------------------------------------- the API

def _string_places(body: Any, place: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(body, str):
        return [place]
    if isinstance(body, dict):
        return [p for key, value in body.items() for p in _string_places(value, (*place, key))]
    if isinstance(body, list):
        return [p for i, value in enumerate(body) for p in _string_places(value, (*place, i))]
    return []


def _spoilt(body: Any, place: tuple[Any, ...], bad: str) -> Any:
    copy = json.loads(json.dumps(body))
    node = copy
    for part in place[:-1]:
        node = node[part]
    node[place[-1]] = bad
    return copy


API_BODIES: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
    ("/api/v1/encounters", "post"): lambda: {
        "person": {"surname": "Api", "given_name": "Sam", "date_of_birth": "1990-02-03", "pnc_id": "2001/0000001X"},
        "contact": {"phone": "07700 900123", "email": "sam@example.org", "address": "1 High Street"},
        "ethnicity": "NS", "offence_on": datetime.now(UTC).date().isoformat(),
        "facts": dict(matrix.CASE_FACTS)},
    ("/api/v1/decisions/{decision_id}/referrals", "post"): lambda: {"offering_id": matrix.CASE["offering"],
                                                              "reason": "Offered"},
    ("/api/v1/referrals/{referral_id}/transitions", "post"): lambda: {"to": "accepted", "reason": "Agreed"},
    ("/api/v1/provider/referrals/{referral_id}/transitions", "post"): lambda: {"to": "accepted", "reason": "Agreed",
                                                                         "expected_state": "offered"},
}


def test_every_api_body_refuses_control_characters_in_every_string(
    app: Flask, client: FlaskClient, world: World
) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    operations = {(path, method) for path, item in document["paths"].items() for method in item
                  if method in ("post", "put", "patch")}
    assert operations == set(API_BODIES), "a writing operation of the API has no body to spoil here"
    matrix._record_referral(app, world)
    with app.app_context():
        with scoped(world.a.id):
            _token, force_secret = api_tokens.make_force_token(db.session.get(Tenant, world.a.id), name="Bad input",
                                                           actor=SYSTEM)
        provider = db.session.get(Provider, world.providers["cranstoun"].id)
        _token, provider_secret = provider_tokens.make_provider_token(provider, name="Bad input", actor=SYSTEM)
        db.session.commit()
    ids = {"decision_id": matrix.CASE["decision"], "referral_id": matrix.CASE["referral"]}
    for (path, _method), make in API_BODIES.items():
        secret = provider_secret if path.startswith("/api/v1/provider/") else force_secret
        url = path.format(**ids)
        body = make()
        places = _string_places(body)
        assert places
        for place in places:
            for bad in (NUL, "\ud800"):
                raw = json.dumps(_spoilt(body, place, bad))
                response = client.post(url, data=raw, content_type="application/json",
                                       headers={"Authorization": f"Bearer {secret}"})
                assert response.status_code == 422, (url, place, response.status_code, response.text[:300])
                assert response.get_json()["errors"], (url, place)
    with app.app_context(), scoped(world.a.id):
        assert db.session.scalar(select(func.count()).select_from(Encounter)) == 1
        referral = db.session.get(Referral, uuid.UUID(matrix.CASE["referral"]))
        assert referral is not None
        assert referral.state.value == "offered"


def test_a_query_parameter_with_a_nul_is_the_apis_422_on_it(app: Flask, client: FlaskClient, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        _token, secret = api_tokens.make_force_token(db.session.get(Tenant, world.a.id), name="Query", actor=SYSTEM)
        db.session.commit()
    response = client.get("/api/v1/referrals?state=%00", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 422
    assert response.get_json() == {"errors": [
        {"field": "state", "message": "The address's “state” value cannot contain control characters."}]}


def test_a_bearer_token_with_a_nul_is_a_plain_401(client: FlaskClient, world: World) -> None:
    for token in ("dvt.west\x00midlands.abcd1234.secret", "dvp.cran\x00stoun.abcd1234.secret"):
        path = "/api/v1/referrals" if token.startswith("dvt") else "/api/v1/provider/referrals"
        response = client.get(path, headers={"Authorization": f"Bearer {quote(token, safe='.')}"})
        assert response.status_code == 401
        response = client.get(path, headers=[("Authorization", f"Bearer {token}")])
        assert response.status_code == 401


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_date_refuses_a_day_that_does_not_exist_in_its_own_words(
    app: Flask, client: FlaskClient, world: World, page: Page
) -> None:
    url, html = _open(app, client, world, page)
    for form in forms_on(html, url):
        dates = [f for f in form.fields.values() if f.kind == "text" and len(f.values) == 3]
        for target in dates:
            data = _valid(app, world, form)
            data[target.name] = ["31", "2", "2020"]
            response = _send(client, form, data, html)
            assert response.status_code == 400, (form.action, target.name, response.text[:300])
            assert "must be a real date" in response.text, (form.action, target.name)
            assert "Not a valid date" not in response.text
            assert f'href="#{target.name}-day"' in response.text  # the summary's link reaches the day input
