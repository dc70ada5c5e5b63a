"""Simulation: the report equals one made case by case with decide(); large runs go to a job,
whose report is the direct simulation's, whose progress is recorded, and which each force alone reads."""

from __future__ import annotations

import html
import random
import re
import uuid
from collections import Counter
from datetime import date, timedelta

import pytest
from flask import Flask
from sqlalchemy import select, text, update

from diversion import jobs
from diversion.demo import seed_past_decisions
from diversion.eligibility import past, runs, services
from diversion.eligibility.compiler import CompiledPolicy, compile_policy
from diversion.eligibility.engine import decide
from diversion.eligibility.models import Decision, SimulationState
from diversion.eligibility.simulation import (
    GroupChange,
    PastCase,
    Report,
    chunks_of,
    column_needs,
    facts_needed,
    label,
    replay,
    simulate,
)
from diversion.extensions import db
from diversion.jobs.models import JobRun, RunState
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests import databases
from tests.conftest import World, sign_in
from tests.eligibility.test_engine import _random_facts
from tests.eligibility.test_forces import FORCES, policy
from tests.eligibility.test_versions import TODAY
from tests.eligibility.test_views import give_thames_valley_history

# A policy the column translation cannot express: evaluated case by case with rule-engine.
UNUSUAL = {
    "parameters": {"limit": [{"from": "2020-01-01", "value": 60}, {"from": "2023-01-01", "value": 40}]},
    "exclusions": [{"id": "dealer", "excluded_if": "user_dealer", "reason": "Dealing."}],
    "pathways": [{"id": "p", "name": "P", "sessions": 1, "deadline_days": 10, "criteria": [
        {"id": "sum", "expression": "age + offence_age_days < limit", "reason": "Too late."},
        {"id": "drug", "expression": "substances[0] == 'cannabis'", "reason": "Cannabis first."},
    ]}, {"id": "q", "name": "Q", "sessions": 1, "deadline_days": 10, "criteria": [
        {"id": "bad", "expression": "'weapon' in aggravating_factors", "reason": "No weapon."},
    ]}],
}


def _by_hand(compiled: CompiledPolicy, cases: list[PastCase]) -> Report:
    """The report made the slow way: each case decided with ``decide()``, every criterion's result counted."""
    report = Report(cases=len(cases), changed=0)
    blocking: Counter[tuple[str | None, str]] = Counter()
    reasons: dict[tuple[str | None, str], str] = {}
    groups: dict[str, dict[str, list[int]]] = {"age": {}, "ethnicity": {}}
    for case in cases:
        decision = decide(compiled, case.facts, case.decided_on)
        old, new = label(case.outcome, case.pathway), label(decision.outcome, decision.pathway)
        report.table.setdefault(old, Counter())[new] += 1
        report.changed += old != new
        for result in decision.results:
            reasons[result.pathway, result.criterion] = result.reason
            blocking[result.pathway, result.criterion] += result.result == "unmet"
        for kind, group in (("age", case.age_band), ("ethnicity", case.ethnicity)):
            tally = groups[kind].setdefault(group, [0, 0, 0])
            tally[0] += 1
            tally[1] += case.outcome == "eligible"
            tally[2] += decision.outcome == "eligible"
    report.blocking = [(p, c, reasons[p, c], n) for (p, c), n in blocking.items() if n]
    report.by_age_band = [GroupChange(k, *v) for k, v in sorted(groups["age"].items())]
    report.by_ethnicity = [GroupChange(k, *v) for k, v in sorted(groups["ethnicity"].items())]
    return report


def _same(got: Report, expected: Report) -> None:
    assert (got.cases, got.changed, got.table) == (expected.cases, expected.changed, expected.table)
    assert sorted(got.blocking, key=str) == sorted(expected.blocking, key=str)
    assert [-n for *_, n in got.blocking] == sorted(-n for *_, n in got.blocking)  # most blocking first
    assert (got.by_age_band, got.by_ethnicity) == (expected.by_age_band, expected.by_ethnicity)


def _past_cases(rng: random.Random, count: int, pathways: list[str]) -> list[PastCase]:
    made = []
    for _ in range(count):
        outcome = rng.choice(("eligible", "not_eligible", "needs_review"))
        made.append(PastCase(_random_facts(rng), date(2020, 1, 1) + timedelta(days=rng.randrange(2000)), outcome,
                             rng.choice([*pathways, "retired-pathway"]) if outcome == "eligible" else None,
                             rng.choice(("10-17", "18-24", "25-34", "35+")), rng.choice(("W1", "B1", "A2", "NS"))))
    return made


@pytest.mark.parametrize("slug", [*FORCES, "unusual"])
def test_the_report_equals_one_made_case_by_case_with_decide(slug: str) -> None:
    compiled = compile_policy(UNUSUAL) if slug == "unusual" else policy(slug)
    cases = _past_cases(random.Random(slug), 1200, [p.id for p in compiled.pathways])
    expected = _by_hand(compiled, cases)
    assert len(expected.table) > 2  # every kind of row exercised
    assert expected.blocking
    _same(simulate(compiled, cases), expected)
    # In chunks of any size, each reporting its progress.
    done: list[int] = []
    _same(replay(compiled, chunks_of(cases, facts_needed(compiled), size=97), progress=done.append), expected)
    assert done == [97] * 12 + [36]


def test_a_report_survives_being_kept_as_json() -> None:
    compiled = policy("durham")
    report = simulate(compiled, _past_cases(random.Random(3), 300, ["checkpoint"]))
    assert Report.from_json(report.as_json()) == report


# ---------------------------------------------------------------- from the database


def _tenant(slug: str) -> Tenant:
    return db.session.scalar(select(Tenant).where(Tenant.slug == slug))


def _stored_cases() -> list[PastCase]:
    """The force in scope's decisions as objects, the way the simulation no longer reads them."""
    return [PastCase(*row) for row in db.session.execute(select(
        Decision.facts, Decision.decided_on, Decision.outcome, Decision.pathway, Decision.age_band,
        Decision.ethnicity))]


def _histories(app: Flask, world: World) -> None:
    """300 past decisions in Thames Valley (whose admin West Midlands' admin is made), 120 in Durham."""
    give_thames_valley_history(app, world, 300)
    with app.app_context():
        durham = _tenant("durham")
        with scoped(durham.id):
            assert seed_past_decisions(durham, today=TODAY, count=120) == 120
        db.session.commit()


def _odd_decisions(app: Flask) -> None:
    """Thames Valley decisions whose facts say ``null`` for an unknown fact, or leave a list out."""
    with app.app_context():
        thames = _tenant("thames-valley")
        with scoped(thames.id):
            first = db.session.scalars(select(Decision).order_by(Decision.decided_on)).first()
            for changes in ({"age": None, "stage": None}, {"aggravating_factors": None, "user_dealer": None},
                            {"substances": None, "offence": None}):
                facts = {**first.facts, **changes}
                if changes.get("substances", 1) is None:
                    del facts["substances"]
                db.session.add(Decision(policy_version_id=first.policy_version_id,
                                        decided_on=first.decided_on, facts=facts, outcome="needs_review",
                                        pathway=None, unmet=[], missing=[], age_band="unknown",
                                        ethnicity="NS", source="demo"))
            db.session.commit()


@pytest.mark.parametrize("slug", [*FORCES, "unusual"])
def test_the_database_is_read_in_chunks_to_the_same_report(app: Flask, world: World, slug: str,
                                                           database: databases.TestDatabase) -> None:
    _histories(app, world)
    _odd_decisions(app)
    compiled = compile_policy(UNUSUAL) if slug == "unusual" else policy(slug)
    with app.app_context(), scoped(_tenant("thames-valley").id):
        cases = _stored_cases()
        assert len(cases) == services.count_past_decisions(None) == 303  # Durham's are not read
        expected = _by_hand(compiled, cases)
        done: list[int] = []
        _same(services.simulate(compiled, None, progress=done.append, size=64), expected)
        assert done == [64, 64, 64, 64, 47]
        ways = [False]  # the facts parsed in Python; on PostgreSQL, also taken out by the database
        if database.is_postgresql and slug != "unusual":
            ways.append(True)
        for typed in ways:
            _same(replay(compiled, past.chunks(compiled, None, size=100, typed=typed)), expected)
            since = sorted(case.decided_on for case in cases)[150]
            later = [case for case in cases if case.decided_on >= since]
            assert services.count_past_decisions(since) == len(later)
            _same(replay(compiled, past.chunks(compiled, since, typed=typed)), _by_hand(compiled, later))


def test_a_decision_in_no_list_is_read_again_parsed(app: Flask, world: World,
                                                  database: databases.TestDatabase) -> None:
    """A group no list has (never made by the platform: written here past its checks) stops the typed
    read; the simulation reads again, parsed, to the same report, its progress never told twice."""
    give_thames_valley_history(app, world, 150)
    with app.app_context(), scoped(_tenant("thames-valley").id):
        first = db.session.scalars(select(Decision).order_by(Decision.decided_on)).first()
        db.session.add(Decision(policy_version_id=first.policy_version_id,
                                decided_on=first.decided_on, facts=first.facts, outcome="eligible",
                                pathway="retired-pathway", unmet=[], missing=[], age_band="18-24",
                                ethnicity="ZZ", source="demo"))
        db.session.commit()
        cases = _stored_cases()
        if database.is_postgresql:
            with pytest.raises(past.Unlisted):
                list(past.chunks(policy("durham"), None, typed=True))
        done: list[int] = []
        _same(services.simulate(policy("durham"), None, progress=done.append, size=100),
              _by_hand(policy("durham"), cases))
        assert sum(done) == 151


def test_the_columns_a_policy_needs() -> None:
    needs = column_needs(policy("durham"))
    assert needs is not None
    assert set(needs.fields) == {"admission", "age", "aggravating_factors", "detained_mental_health_act",
                                 "held_for_court", "offence", "offence_age_days", "resident_in_force_area", "stage",
                                 "under_court_order", "user_dealer"}
    assert needs.memberships == tuple(sorted(needs.memberships))
    assert {option for field, option in needs.memberships if field == "aggravating_factors"}
    assert column_needs(compile_policy(UNUSUAL)) is None  # its criteria need the facts' own values


def _ask(client, query: str):
    return client.get(f"/thames-valley/policy/simulate?{query}")


def _start(client, page: str):
    """Press "Start the simulation" on the page: the form's own fields, posted."""
    form = re.search(r'<form method="post" action="([^"]+/simulate/runs)".*?</form>', page, re.S)
    assert form, "no button to start the simulation"
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(0))
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return client.post(form.group(1), data=data)


def test_a_small_simulation_is_made_while_the_page_waits(app: Flask, client, world: World) -> None:
    give_thames_valley_history(app, world, 300)
    app.config["SIMULATION_JOB_THRESHOLD"] = 300
    sign_in(client, world.email("a_force_admin"))
    page = _ask(client, "source=force:durham")
    assert page.status_code == 200
    assert "of 300 decisions would change" in page.text
    assert "Start the simulation" not in page.text
    with app.app_context(), scoped(_tenant("thames-valley").id):
        assert runs.recent() == []


def test_a_run_over_the_threshold_goes_to_a_job_whose_report_is_the_direct_simulations(
        app: Flask, client, world: World) -> None:
    _histories(app, world)
    app.config["SIMULATION_JOB_THRESHOLD"] = 299
    sign_in(client, world.email("a_force_admin"))
    page = _ask(client, "source=force:durham&since=1&since=1&since=2000")
    assert page.status_code == 200
    assert "There are 300 past decisions to decide again" in page.text
    assert "decisions would change" not in page.text
    started = _start(client, page.text)
    assert started.status_code == 302
    run_page = started.headers["Location"]
    assert run_page.startswith("/thames-valley/policy/simulate/runs/"), run_page
    waiting = client.get(run_page)
    assert "Waiting to start" in waiting.text
    assert "300 past decisions to decide again" in waiting.text
    with app.app_context(), scoped(_tenant("thames-valley").id):
        [run] = runs.recent()
        assert (run.state, run.since, run.policy_label) == (SimulationState.WAITING, date(2000, 1, 1),
                                                            "Durham Constabulary version 1")
    jobs.work_now(app)

    finished = client.get(run_page)
    assert "Finished at" in finished.text
    changed = re.search(r'data-testid="changed">(.*?)</p>', finished.text, re.S).group(1)
    assert "of 300 decisions would change" in changed
    assert "How often each criterion blocks" in finished.text
    assert "Simulations run in the background" in client.get("/thames-valley/policy/simulate").text
    with app.app_context():
        thames = _tenant("thames-valley")
        with scoped(thames.id):
            run = runs.find(run.id)
            direct = services.simulate(policy("durham"), date(2000, 1, 1))
            assert runs.report_of(run) == direct
            # Progress, on the run for the page and on the job's own record.
            assert (run.state, run.done, run.total) == (SimulationState.FINISHED, 300, 300)
        job = db.session.scalar(select(JobRun).where(JobRun.task == runs.SIMULATE))
        assert (job.state, job.done, job.total, job.note) == (RunState.SUCCEEDED, 300, 300,
                                                               "300 of 300 past decisions replayed")
    # Made once: the same job again does nothing.
    with app.app_context():
        runs.simulate_job(str(run.id), thames.id)
        db.session.commit()
        with scoped(thames.id):
            assert runs.find(run.id).finished_at == run.finished_at


def test_a_force_cannot_read_another_forces_run(app: Flask, client, world: World,
                                                database: databases.TestDatabase) -> None:
    _histories(app, world)
    app.config["SIMULATION_JOB_THRESHOLD"] = 10
    sign_in(client, world.email("a_force_admin"))
    started = _start(client, _ask(client, "source=force:durham").text)
    run_id = uuid.UUID(started.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        durham = _tenant("durham")
        with scoped(durham.id):
            assert runs.find(run_id) is None
            assert runs.recent() == []
            if database.is_postgresql:  # row-level security, beneath the ORM guard
                assert db.session.execute(text("SELECT count(*) FROM simulation_runs")).scalar_one() == 0
        # The job given another force than the run's finds no run, and leaves it waiting.
        runs.simulate_job(str(run_id), durham.id)
        db.session.commit()
        with scoped(_tenant("thames-valley").id):
            assert runs.find(run_id).state is SimulationState.WAITING
    # Durham's admin, at Durham's address or at Thames Valley's, finds nothing.
    other = app.test_client()
    sign_in(other, world.email("b_force_admin"))
    assert other.get(f"/durham/policy/simulate/runs/{run_id}").status_code == 404
    assert other.get(f"/thames-valley/policy/simulate/runs/{run_id}").status_code == 404
    # The run itself replays Thames Valley's decisions alone.
    jobs.work_now(app)
    with app.app_context(), scoped(_tenant("thames-valley").id):
        assert runs.report_of(runs.find(run_id)).cases == 300


def test_a_run_that_fails_says_so(app: Flask, client, world: World) -> None:
    give_thames_valley_history(app, world, 30)
    app.config["SIMULATION_JOB_THRESHOLD"] = 10
    sign_in(client, world.email("a_force_admin"))
    run_page = _start(client, _ask(client, "source=force:durham").text).headers["Location"]
    with app.app_context(), scoped(_tenant("thames-valley").id):
        [run] = runs.recent()
        run.policy_document = {**run.policy_document, "pathways": "not a list"}
        db.session.commit()
    jobs.work_now(app)
    page = client.get(run_page)
    assert "Stopped before the end" in page.text
    assert "The simulation stopped before the end" in page.text
    with app.app_context():
        assert db.session.scalar(select(JobRun.state).where(JobRun.task == runs.SIMULATE)) is RunState.FAILED


def _table(page: str, caption: str) -> list[list[str]]:
    """The cells of the table with ``caption``, row by row (its head first), as the reader sees them."""
    table = re.search(rf"<table[^>]*>\s*<caption[^>]*>\s*{re.escape(caption)}\s*</caption>(.*?)</table>", page, re.S)
    assert table, f"no table {caption!r}"
    return [[html.unescape(re.sub(r"<[^>]+>|\s+", lambda m: " " if m.group(0).strip() == "" else "", cell)).strip()
             for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1), re.S)]


def _visible(page: str) -> str:
    """The page's text as the reader sees it: its main content, without markup."""
    main = re.search(r"<main.*?</main>", page, re.S)
    assert main
    return html.unescape(re.sub(r"<[^>]+>", " ", main.group(0)))


def test_the_report_names_outcomes_and_pathways_and_counts_with_separators(app: Flask, client,
                                                                            world: World) -> None:
    give_thames_valley_history(app, world, 1_300)
    with app.app_context(), scoped(_tenant("thames-valley").id):  # one decision whose age was not known
        db.session.execute(update(Decision).where(Decision.id == db.session.scalar(select(Decision.id).limit(1)))
                           .values(age_band="unknown"))
        db.session.commit()
    sign_in(client, world.email("a_force_admin"))
    page = _ask(client, "source=force:durham&since=&since=&since=&submit=y").text
    outcomes = _table(page, "Decided then (rows) and now (columns)")
    # What Thames Valley decided then, by its own pathways' names; what Durham's policy decides now, by its.
    assert outcomes[0] == ["Decided then", "Eligible, Checkpoint: 4-month contract", "Not eligible"]
    assert [row[0] for row in outcomes[1:]] == ["Eligible, Adult drug education course",
                                               "Eligible, Youth diversion (under 18)", "Needs review", "Not eligible"]
    blocking = _table(page, "How often each criterion blocks")
    # Each criterion by why it blocks, never by its id in the policy.
    assert blocking[0] == ["Pathway", "Reason", "Cases"]
    assert {row[0] for row in blocking[1:]} == {"Checkpoint: 4-month contract", "every pathway (exclusion)"}
    assert ["Checkpoint: 4-month contract", "Checkpoint is offered after arrest, in custody."] \
        in [row[:2] for row in blocking[1:]]
    durham = policy("durham")
    criteria = {c.id for c in durham.exclusions} | {c.id for p in durham.pathways for c in p.criteria}
    assert not criteria & {cell for row in blocking for cell in row}
    assert "after-arrest" not in _visible(page)
    counts = [cell for row in (*outcomes[1:], *blocking[1:]) for cell in row[1:] if cell[:1].isdigit()]
    counts += [row[-1] for row in blocking[1:]]
    assert any(len(n) > 3 for n in counts), counts  # some count in the thousands, with its separator
    assert all(re.fullmatch(r"\d{1,3}(,\d{3})*", n) for n in counts), counts
    by_age = _table(page, "Eligible then and now, by age band")
    assert all(re.fullmatch(r"[+-]\d{1,3}(,\d{3})*", row[-1]) for row in by_age[1:])
    assert "Not known" in [row[0] for row in by_age[1:]]  # the decision whose age was not known
    assert "unknown" not in _visible(page)
    by_ethnicity = _table(page, "Eligible then and now, by ethnicity")
    assert all(re.fullmatch(r"[A-Z][A-Z0-9] – .+", row[0]) for row in by_ethnicity[1:]), by_ethnicity
    assert not re.search(r"\beligible: |needs_review|not_eligible|>\s*adult-course\s*<|>\s*checkpoint\s*<", page)

    # The same report, in Welsh: outcomes by their Welsh labels, North Wales's pathway by its Welsh name.
    welsh = _ask(client, "source=force:north-wales&lang=cy").text
    outcomes = _table(welsh, "Penderfyniad bryd hynny (rhesi) a nawr (colofnau)")
    assert "Cymwys, Checkpoint Cymru: contract 4 mis" in outcomes[0]
    assert "Ddim yn gymwys" in outcomes[0]
    assert [row[0] for row in outcomes[1:]] == ["Cymwys, Adult drug education course",  # no Welsh name of its own
                                               "Cymwys, Youth diversion (under 18)", "Angen adolygiad",
                                               "Ddim yn gymwys"]
    blocking = _table(welsh, "Pa mor aml y mae pob maen prawf yn rhwystro")
    assert "Checkpoint Cymru: contract 4 mis" in {row[0] for row in blocking[1:]}
    # Why each criterion blocks, in the Welsh North Wales's policy gives; its id nowhere.
    assert blocking[0] == ["Llwybr", "Rheswm", "Achosion"]
    assert ["Checkpoint Cymru: contract 4 mis", "Cynigir Checkpoint Cymru ar ôl arestio."] \
        in [row[:2] for row in blocking[1:]]
    assert not {"Checkpoint Cymru is offered after arrest.", "Excluded: on bail."} & {row[1] for row in blocking[1:]}
    assert "after-arrest" not in _visible(welsh)
    assert "Ddim yn hysbys" in [row[0] for row in _table(welsh, "Cymwys bryd hynny a nawr, yn ôl band oedran")[1:]]


def test_a_run_in_the_background_names_outcomes_and_pathways(app: Flask, client, world: World) -> None:
    give_thames_valley_history(app, world, 30)
    app.config["SIMULATION_JOB_THRESHOLD"] = 10
    sign_in(client, world.email("a_force_admin"))
    run_page = _start(client, _ask(client, "source=force:durham").text).headers["Location"]
    jobs.work_now(app)
    page = client.get(run_page).text
    outcomes = _table(page, "Decided then (rows) and now (columns)")
    assert "Eligible, Checkpoint: 4-month contract" in outcomes[0]
    assert "Eligible, Adult drug education course" in [row[0] for row in outcomes[1:]]
    assert not re.search(r"\beligible: |needs_review|not_eligible", page)
