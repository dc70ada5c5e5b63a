"""The policy console in the browser's terms: pages, forms and their errors."""

from __future__ import annotations

import html
import re

from flask import Flask

from diversion.accounts import services as accounts
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import Role, User
from diversion.demo import seed_past_decisions
from diversion.eligibility import services
from diversion.extensions import db
from diversion.forces import onboarding
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World, csrf_token, sign_in
from tests.eligibility.test_versions import TODAY
from tests.forces.test_onboarding import CLEVELAND


def _draft_text(page: str) -> str:
    match = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S)
    assert match
    return html.unescape(match.group(1))


def _save(client, text: str, note: str = ""):
    page = client.get("/durham/policy/draft")
    return client.post("/durham/policy/draft",
                       data={"document": text, "note": note, "csrf_token": csrf_token(page.text)})


def test_everyone_in_the_force_reads_the_policy_in_plain_english(client, world: World) -> None:
    sign_in(client, world.email("b_officer"))
    page = client.get("/durham/policy/")
    assert page.status_code == 200
    assert "Checkpoint: 4-month contract" in page.text
    assert "Excluded: the offence is more than three months old." in page.text
    assert "offence_age_days &gt; max_offence_age_days" in page.text
    assert client.get("/durham/policy/fields").status_code == 200
    assert client.get("/durham/policy/draft").status_code == 403
    assert client.get("/durham/policy/simulate").status_code == 403


def test_the_policy_page_shows_its_test_cases_and_no_hash(client, world: World) -> None:
    sign_in(client, world.email("b_officer"))
    page = client.get("/durham/policy/").text
    assert "Content hash" not in page
    assert "sha256:" not in page
    assert "19 test cases come with this policy" in page
    cases = re.search(r'data-testid="policy-tests">(.*?)</table>', page, re.S).group(1)
    assert "adult in custody with cannabis" in cases
    assert "Eligible, Checkpoint" in cases  # the expected decision, with its pathway's name
    assert "supply by someone who is not a user-dealer" in cases
    assert "Not eligible" in cases
    versions = client.get("/durham/policy/versions").text
    assert "sha256:" not in versions
    assert ">Hash<" not in versions


def test_a_bad_draft_shows_each_problem_in_place_and_saves_nothing(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("b_force_admin"))
    text = _draft_text(client.get("/durham/policy/draft").text)
    broken = text.replace('expression = "age >= adult_age"', 'expression = "age >= adult_agee"', 1)
    assert broken != text
    response = _save(client, broken)
    assert response.status_code == 400
    assert "There is a problem: nothing was saved" in response.text
    assert "1 problem to fix: nothing was saved" in response.text  # a plural that agrees, not "problem(s)"
    assert "(s)" not in response.text
    twice = _save(client, broken.replace('"resident_in_force_area"', '"resident_in_force_areaa"', 1))
    assert "2 problems to fix: nothing was saved" in twice.text
    problem = re.search(r'data-testid="policy-problems">(.*?)</ul>', response.text, re.S).group(1)
    assert "Pathway checkpoint, criterion adult" in problem
    line = next(i for i, row in enumerate(broken.splitlines(), 1) if "adult_agee" in row)
    assert f"line {line}, column" in problem
    assert "unknown field &#39;adult_agee&#39;" in problem
    assert "adult_agee" in _draft_text(response.text)  # the admin's text is kept to fix
    not_toml = _save(client, "pathways = [")
    assert not_toml.status_code == 400
    assert "not valid TOML" in not_toml.text
    with app.app_context(), scoped(world.b.id):
        assert services.current_draft() is None


def test_a_bad_draft_is_explained_in_welsh_to_a_reader_of_welsh(client, world: World) -> None:
    sign_in(client, world.email("b_force_admin"))
    text = _draft_text(client.get("/durham/policy/draft?lang=cy").text)
    response = _save(client, text.replace('expression = "age >= adult_age"', 'expression = "age >= adult_agee"', 1))
    assert response.status_code == 400
    problem = html.unescape(re.search(r'data-testid="policy-problems">(.*?)</ul>', response.text, re.S).group(1))
    assert "maes anhysbys 'adult_agee': nid yw yn y catalog cenedlaethol nac yn baramedr" in problem
    assert "unknown field" not in problem


def test_edit_test_publish_and_diff_in_the_console(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("b_force_admin"))
    text = _draft_text(client.get("/durham/policy/draft").text)
    changed = text.replace('reason = "Excluded: hate crime."', 'reason = "Excluded: a hate crime or hate incident."')
    assert _save(client, changed, "Clearer hate crime reason").status_code == 302

    draft_page = client.get("/durham/policy/draft")
    assert "Draft version 2" in draft_page.text
    tested = client.post("/durham/policy/draft/test", data={"csrf_token": csrf_token(draft_page.text)})
    assert tested.status_code == 200
    assert "19 of 19 test cases pass" in tested.text

    bad_date = client.post("/durham/policy/draft/publish", data={
        "effective_from": ["31", "2", "2027"], "csrf_token": csrf_token(draft_page.text)})
    assert bad_date.status_code == 400
    assert "There is a problem" in bad_date.text
    published = client.post("/durham/policy/draft/publish", data={
        "effective_from": ["1", "12", "2026"], "csrf_token": csrf_token(draft_page.text)})
    assert published.status_code == 302
    versions = client.get("/durham/policy/versions").text
    assert "Version 2" in versions
    assert "Clearer hate crime reason" in versions
    diff = client.get("/durham/policy/versions/diff?from=1&to=2")
    assert diff.status_code == 200
    changes = re.search(r'data-testid="changes">(.*?)</table>', diff.text, re.S).group(1)
    assert "hate-crime" in changes
    assert "Excluded: a hate crime or hate incident." in html.unescape(changes)
    assert client.get("/durham/policy/versions/diff?from=1").status_code == 400
    with app.app_context(), scoped(world.b.id):
        assert services.policy_in_force(TODAY).number == 1


def test_publishing_a_draft_whose_tests_fail_is_refused_on_the_page(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("b_force_admin"))
    text = _draft_text(client.get("/durham/policy/draft").text)
    assert _save(client, text.replace("value = 92 }", "value = 30 }")).status_code == 302
    page = client.get("/durham/policy/draft")
    response = client.post("/durham/policy/draft/publish", data={
        "effective_from": ["1", "12", "2026"], "csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    shown = html.unescape(client.get("/durham/policy/draft").text)
    assert "Not published: 1 test case fails: offence 92 days old is within three months" in shown
    with app.app_context(), scoped(world.b.id):
        assert not services.current_draft().is_published


def test_discarding_the_draft_asks_first(app: Flask, client, world: World) -> None:
    sign_in(client, world.email("b_force_admin"))
    assert client.get("/durham/policy/draft/discard").status_code == 404  # no draft to ask about
    text = _draft_text(client.get("/durham/policy/draft").text)
    assert _save(client, text.replace("value = 92 }", "value = 91 }"), "Trying a shorter window").status_code == 302
    assert 'href="/durham/policy/draft/discard"' in client.get("/durham/policy/draft").text  # a link to a question
    asked = client.get("/durham/policy/draft/discard")
    assert asked.status_code == 200
    assert "Discard draft version 2?" in asked.text
    assert "Trying a shorter window" in asked.text
    assert "Version 1, the policy in force, stays as it is." in asked.text
    assert "Cancel" in asked.text
    with app.app_context(), scoped(world.b.id):
        assert services.current_draft() is not None  # asking changed nothing
    assert client.post("/durham/policy/draft/discard").status_code == 400  # no token: refused, as before
    discarded = client.post("/durham/policy/draft/discard", data={"csrf_token": csrf_token(asked.text)})
    assert discarded.status_code == 302
    assert discarded.headers["Location"] == "/durham/policy/"
    assert "The draft was discarded." in client.get("/durham/policy/").text
    with app.app_context(), scoped(world.b.id):
        assert services.current_draft() is None
        assert services.policy_in_force(TODAY).number == 1
    assert client.get("/durham/policy/draft/discard").status_code == 404


def give_thames_valley_history(app: Flask, world: World, count: int) -> None:
    """Past decisions in Thames Valley, and West Midlands' admin made its admin too."""
    with app.app_context():
        thames = db.session.scalar(db.select(Tenant).where(Tenant.slug == "thames-valley"))
        admin = db.session.get(User, world.users["a_force_admin"].id)
        with scoped(thames.id):
            seed_past_decisions(thames, today=TODAY, count=count)
            accounts.add_membership(thames, admin, Role.FORCE_ADMIN, actor=SYSTEM)
        db.session.commit()


def test_simulation_page_shows_thames_valley_under_durhams_policy(app: Flask, client, world: World) -> None:
    give_thames_valley_history(app, world, 200)
    with app.app_context():  # a force being set up in the console: no policy published yet
        draft = onboarding.start_draft(CLEVELAND, actor=SYSTEM)
        with scoped(draft.id):
            onboarding.copy_policy(draft, db.session.scalar(db.select(Tenant).where(Tenant.slug == "durham")),
                                   actor=SYSTEM, today=TODAY)
        db.session.commit()
    sign_in(client, world.email("a_force_admin"))
    form = client.get("/thames-valley/policy/simulate")
    assert "Durham Constabulary: Checkpoint (published)" in form.text
    assert "Cleveland" not in form.text
    assert client.get("/thames-valley/policy/simulate?source=force:cleveland").status_code == 400
    report = client.get("/thames-valley/policy/simulate?source=force:durham")
    assert report.status_code == 200
    changed = re.search(r'data-testid="changed">(.*?)</p>', report.text, re.S).group(1)
    assert "of 200 decisions would change" in changed
    assert "decided again as on its own day: a value the policy gives from a later date does not apply" in report.text
    assert "How often each criterion blocks" in report.text
    assert "Eligible then and now, by age band" in report.text
    assert "Eligible then and now, by ethnicity" in report.text
    assert client.get("/thames-valley/policy/simulate?source=force:gotham").status_code == 400


def test_running_a_simulation_without_a_policy_asks_for_one(app: Flask, client, world: World) -> None:
    give_thames_valley_history(app, world, 20)
    sign_in(client, world.email("a_force_admin"))
    untouched = client.get("/thames-valley/policy/simulate")
    assert "There is a problem" not in untouched.text
    # "Run simulation" pressed with no policy chosen (and no date): the form comes back with the error.
    page = client.get("/thames-valley/policy/simulate?since=&since=&since=&submit=y")
    assert page.status_code == 400
    assert "<title>Error: Simulate a policy" in page.text
    summary = re.search(r'<div class="govuk-error-summary".*?</ul>', page.text, re.S)
    assert summary
    assert re.search(r'<a href="#source">\s*Choose the policy to try\s*</a>', summary.group(0))
    assert re.search(r'<input class="govuk-radios__input" id="source" name="source"', page.text)
    assert re.search(r'class="govuk-error-message"[^>]*>\s*<span class="govuk-visually-hidden">Error:</span>'
                     r'\s*Choose the policy to try', page.text)
    assert 'id="results"' not in page.text  # no report
    welsh = client.get("/thames-valley/policy/simulate?since=&since=&since=&submit=y&lang=cy")
    assert welsh.status_code == 400
    assert "Dewiswch y polisi i&#39;w roi ar brawf" in welsh.text


def test_test_results_and_the_refusal_to_publish_name_outcomes_and_pathways(app: Flask, client,
                                                                            world: World) -> None:
    sign_in(client, world.email("a_force_admin"))
    page = client.get("/west-midlands/policy/draft")
    text = _draft_text(page.text)
    # Adults from 25, young people from 18: an 18-year-old takes the young person's route, a 17-year-old none.
    changed = text.replace("adult_age = [\n    { from = 2020-10-01, value = 18 },",
                           "adult_age = [\n    { from = 2020-10-01, value = 25 },").replace(
                           "youngest_age = [\n    { from = 2020-10-01, value = 10 },",
                           "youngest_age = [\n    { from = 2020-10-01, value = 18 },")
    assert "value = 25 }" in changed
    assert "value = 10 }" not in changed
    saved = client.post("/west-midlands/policy/draft",
                        data={"document": changed, "note": "", "csrf_token": csrf_token(page.text)})
    assert saved.status_code == 302
    draft = client.get("/west-midlands/policy/draft")

    tested = client.post("/west-midlands/policy/draft/test", data={"csrf_token": csrf_token(draft.text)})
    results = html.unescape(re.search(r'data-testid="test-results">(.*?)</table>', tested.text, re.S).group(1))
    rows = {re.sub(r"<[^>]+>", "", cells[0]).strip(): [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in cells[1:]]
            for cells in (re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
                          for row in re.findall(r"<tr[^>]*>(.*?)</tr>", results, re.S)[1:])}
    assert rows["18 exactly is an adult"][1:] == [
        "Eligible, DIVERT young person's route",
        "expected pathway DIVERT (adults), got DIVERT young person's route"]
    assert rows["17 takes the young person's route"][1:] == [
        "Not eligible",
        "expected Eligible, got Not eligible; expected pathway DIVERT young person's route, got no pathway"]
    assert rows["adult with cannabis"] == ["Pass", "Eligible, DIVERT (adults)", ""]
    assert rows["age unknown needs review"][1] == "Needs review"
    assert not re.search(r"eligible: |not_eligible|needs_review|\bdivert-youth\b|pathway divert\b", results)

    refused = client.post("/west-midlands/policy/draft/publish", data={
        "effective_from": ["1", "12", "2026"], "csrf_token": csrf_token(draft.text)})
    assert refused.status_code == 302
    shown = html.unescape(client.get("/west-midlands/policy/draft").text)
    assert "Not published: 2 test cases fail, for example 18 exactly is an adult: expected pathway " \
           "DIVERT (adults), got DIVERT young person's route." in shown

    welsh = client.post("/west-midlands/policy/draft/test?lang=cy", data={"csrf_token": csrf_token(draft.text)})
    said = html.unescape(welsh.text)
    assert "Cymwys, DIVERT young person's route" in said  # the force gives no Welsh names
    assert "disgwyliwyd Cymwys, cafwyd Ddim yn gymwys; disgwyliwyd llwybr DIVERT young person's route, " \
           "cafwyd dim llwybr" in said
