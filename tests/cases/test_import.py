"""`diversion import`: historic encounters and referrals from a CSV file."""

from __future__ import annotations

import csv
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import func, select

from diversion.accounts.access import SYSTEM
from diversion.audit.models import AuditEvent
from diversion.cases import importer
from diversion.cases.identity import open_identity
from diversion.cases.models import Attendance, Encounter, Person, Referral, State, Why
from diversion.catalogue.models import Course
from diversion.cli import main
from diversion.eligibility.models import Decision
from diversion.extensions import db
from diversion.providers import webhooks
from diversion.providers.feed import high_water
from diversion.providers.models import FeedEntry, WebhookDelivery
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World, sign_in

DURHAM_COURSE = "durham-checkpoint-contract"  # offered by Durham for its "checkpoint" pathway
DIVERT_COURSE = "cranstoun-divert"  # offered by West Midlands for "divert"


def _run(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))


def row(**changes: str) -> dict[str, str]:
    """A 30-year-old arrested with a little cannabis, eligible for Durham's Checkpoint."""
    values = {
        "surname": "Smith", "given_name": "Alex", "date_of_birth": "1994-05-01", "pnc_id": "", "ethnicity": "W1",
        "phone": "", "email": "", "address": "", "offence_on": "2024-03-01", "decided_on": "2024-03-02",
        "offence": "possession", "substances": "cannabis", "drug_class": "B", "personal_use": "true",
        "user_dealer": "no", "admission": "admitted", "under_court_order": "false", "on_bail": "false",
        "held_for_court": "false", "detained_mental_health_act": "false", "aggravating_factors": "none",
        "resident_in_force_area": "yes", "stage": "custody", "suitable_for_out_of_court_disposal": "true",
        "course": "", "referral_state": "", "referral_outcome_on": "", "sessions_attended": "",
    }
    unknown = set(changes) - set(values)
    assert not unknown, unknown
    values.update(changes)
    return values


def street(**changes: str) -> dict[str, str]:
    """The same person met on the street: eligible for West Midlands' DIVERT."""
    return row(**{"stage": "street", **changes})


def write(path: Path, rows: list[dict[str, str] | None], header: list[str] | None = None) -> Path:
    """A CSV file of ``rows`` (None: a blank line) under ``header`` (default: every column)."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        columns = header or list(importer.COLUMNS)
        writer.writerow(columns)
        for values in rows:
            writer.writerow([values.get(name, "") for name in columns] if values else [])
    return path


def utc(moment: datetime) -> datetime:
    """SQLite gives timestamps back without their zone (they are stored in UTC)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def counts(app: Flask, tenant_id: int) -> dict[str, int]:
    with app.app_context(), scoped(tenant_id):
        found = {model.__name__: db.session.scalar(select(func.count()).select_from(model)) or 0
                 for model in (Person, Encounter, Decision, Referral)}
        found["steps"] = sum(len(referral.steps) for referral in db.session.scalars(select(Referral)))
        found["audit"] = db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.tenant_id == tenant_id)) or 0
        db.session.rollback()
        return found


def _import_durham_history(app: Flask, tmp_path: Path) -> Result:
    rows = [
        # Row 2: completed Checkpoint, every session attended.
        row(course=DURHAM_COURSE, referral_state="completed", referral_outcome_on="2024-06-28",
            phone="07700 900123", address="1 High Street\nDurham"),
        # Row 3: the same person (case and spaces do not matter) on the street later: not eligible.
        row(surname=" SMITH ", given_name="alex", offence_on="2025-01-10", decided_on="2025-01-10", stage="street"),
        # Row 4: someone else, with a PNC ID, declined the offer.
        row(surname="Jones", given_name="Sam", date_of_birth="1999-12-31", pnc_id="12/345678A", ethnicity="b1",
            substances="cocaine;cannabis", drug_class="A", course=DURHAM_COURSE, referral_state="declined",
            referral_outcome_on="2024-04-01"),
        # Row 5: Sam under another name, found by the PNC ID; a referral still open (booked).
        row(surname="Jones-Okafor", given_name="Samuel", date_of_birth="1999-12-31", pnc_id="12/345678a",
            ethnicity="B1", offence_on="2025-02-01", decided_on="2025-02-03", course=DURHAM_COURSE,
            referral_state="Booked"),
        # Row 6: the admission is not known: the decision needs review, no referral.
        row(surname="Brown", given_name="Kim", admission="", aggravating_factors=""),
        None,  # a blank line is skipped
    ]
    path = write(tmp_path / "durham-history.csv", rows)
    result = _run(app, "import", "--tenant", "durham", str(path))
    assert result.exit_code == 0, result.output
    return result


def test_a_good_file_imports_people_and_their_decisions(app: Flask, world: World, tmp_path: Path) -> None:
    result = _import_durham_history(app, tmp_path)
    assert "Checking durham-history.csv" in result.output
    assert "Importing into Durham Constabulary" in result.output
    assert "Imported 5 encounters into Durham Constabulary (3 new people)." in result.output
    assert "decisions: eligible 3, needs review 1, not eligible 1" in result.output
    assert "referrals: booked 1, completed 1, declined 1" in result.output

    with app.app_context(), scoped(world.b.id):
        people = db.session.scalars(select(Person)).all()
        assert sorted(open_identity(p.identity_sealed).surname for p in people) == ["Brown", "Jones", "Smith"]
        by_surname = {open_identity(p.identity_sealed).surname: p for p in people}
        smith, jones = by_surname["Smith"], by_surname["Jones"]
        assert jones.ethnicity == "B1"
        encounters = db.session.scalars(select(Encounter).order_by(Encounter.offence_on)).all()
        assert [e.source for e in encounters] == ["import"] * 5
        assert sorted(e.offence_on for e in encounters if e.person_id == smith.id) == [
            date(2024, 3, 1), date(2025, 1, 10)]
        assert len([e for e in encounters if e.person_id == jones.id]) == 2
        first = next(e for e in encounters if e.person_id == jones.id)
        assert first.facts["substances"] == ["cannabis", "cocaine"]
        assert first.facts["aggravating_factors"] == []

        decisions = {(d.decided_on, d.outcome): d for d in db.session.scalars(select(Decision))}
        assert all(d.source == "import" for d in decisions.values())
        later = decisions[(date(2025, 1, 10), "not_eligible")]
        assert later.facts["previous_diversions"] == 1  # the completed Checkpoint of row 2
        assert later.facts["offence_age_days"] == 0
        review = decisions[(date(2024, 3, 2), "needs_review")]
        assert "admission" in review.missing
        assert "aggravating_factors" not in review.facts  # empty is unknown; "none" is an empty list
        imported = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "cases.imported"))
        assert imported is not None
        assert imported.details["rows"] == 5
        assert imported.details["file"] == "durham-history.csv"


def test_referrals_reach_their_states_along_legal_paths(app: Flask, world: World, tmp_path: Path) -> None:
    _import_durham_history(app, tmp_path)
    with app.app_context(), scoped(world.b.id):
        people = {open_identity(p.identity_sealed).surname: p for p in db.session.scalars(select(Person))}
        smith, jones = people["Smith"], people["Jones"]
        referrals = {r.state: r for r in db.session.scalars(select(Referral))}
        assert set(referrals) == {State.COMPLETED, State.DECLINED, State.BOOKED}
        done = referrals[State.COMPLETED]
        assert done.person_id == smith.id
        assert (done.sessions_attended, done.sessions_required) == (5, 5)
        assert done.outcome_code == "outcome-22"
        assert done.deadline == date(2024, 7, 2)  # 122 days from the decision date
        steps = done.transitions  # in the order they happened
        assert [s.to_state for s in steps] == [State.OFFERED, State.ACCEPTED, *[State.BOOKED, State.ATTENDED] * 5,
                                               State.COMPLETED]
        # Each step carries its historic date: the offer on the decision date, the rest on the outcome date.
        assert utc(steps[0].occurred_at) == datetime(2024, 3, 2, 12, tzinfo=UTC)
        assert {utc(s.occurred_at).date() for s in steps[1:]} == {date(2024, 6, 28)}
        assert [s.why for s in steps] == [Why.IMPORTED, Why.IMPORTED, *[Why.BOOKED, Why.ATTENDED] * 5, Why.IMPORTED]
        assert {s.why_details["row"] for s in steps if s.why is Why.IMPORTED and s.why_details} == {2}
        assert steps[0].account == "Imported from historic records (durham-history.csv, row 2)"
        declined = referrals[State.DECLINED]
        assert declined.outcome_code == "prosecution"
        assert [s.to_state for s in declined.transitions] == [State.OFFERED, State.DECLINED]
        booked = referrals[State.BOOKED]
        assert booked.person_id == jones.id
        assert booked.outcome_code is None
        assert [s.to_state for s in booked.transitions] == [State.OFFERED, State.ACCEPTED, State.BOOKED]
        assert {utc(s.occurred_at).date() for s in booked.transitions} == {date(2025, 2, 3)}


def test_earlier_rows_count_as_history_as_the_import_will_record_them(
        app: Flask, world: World, tmp_path: Path) -> None:
    # West Midlands does not offer DIVERT again after a failure to engage.
    failed = street(course=DIVERT_COURSE, referral_state="not_completed", referral_outcome_on="2023-05-01",
                    offence_on="2023-03-01", decided_on="2023-03-01", pnc_id="09/1234567Z")
    again = street(surname="Smyth", offence_on="2024-02-01", decided_on="2024-02-01", pnc_id="091234567Z",
                   course=DIVERT_COURSE, referral_state="offered")
    path = write(tmp_path / "history.csv", [failed, again])
    result = _run(app, "import", "--tenant", "west-midlands", str(path))
    assert result.exit_code == 1
    assert ("row 3, course: the decision is not eligible under policy v1 in force on 2024-02-01; "
            "only an eligible decision can lead to a referral") in result.output
    assert counts(app, world.a.id)["Encounter"] == 0

    again["course"] = again["referral_state"] = ""
    result = _run(app, "import", "--tenant", "west-midlands", str(write(path, [failed, again])))
    assert result.exit_code == 0, result.output
    with app.app_context(), scoped(world.a.id):
        second = db.session.scalar(select(Decision).where(Decision.decided_on == date(2024, 2, 1)))
        assert second is not None
        assert second.outcome == "not_eligible"
        assert second.facts["previous_non_engagement"] is True
        referral = db.session.scalar(select(Referral))
        assert referral is not None
        assert [s.to_state for s in referral.transitions] == [State.OFFERED, State.ACCEPTED, State.NOT_COMPLETED]
        assert referral.outcome_code == "no-further-action"


def test_check_only_reports_and_imports_nothing(app: Flask, world: World, tmp_path: Path) -> None:
    path = write(tmp_path / "check.csv", [row(), row(surname="Jones")])
    result = _run(app, "import", "--tenant", "durham", "--check", str(path))
    assert result.exit_code == 0, result.output
    assert "check.csv: 2 rows, no problems found; nothing was imported (--check)." in result.output
    assert counts(app, world.b.id)["Encounter"] == 0
    result = _run(app, "import", "--tenant", "durham", "--check", str(write(path, [row(stage="moon")])))
    assert result.exit_code == 1
    assert "row 2, stage: must be one of street, custody, not 'moon'" in result.output


def test_a_persons_rows_must_be_in_date_order_when_a_referral_would_count(
        app: Flask, world: World, tmp_path: Path) -> None:
    later = street(offence_on="2024-02-01", decided_on="2024-02-01")
    earlier = street(offence_on="2023-03-01", decided_on="2023-03-01", course=DIVERT_COURSE,
                     referral_state="completed", referral_outcome_on="2023-04-01")
    result = _run(app, "import", "--tenant", "west-midlands", str(write(tmp_path / "order.csv", [later, earlier])))
    assert result.exit_code == 1
    assert "row 3, offence_on: is before the offence of row 2 (2024-02-01) of the same person" in result.output
    # Without a referral the order changes nothing, and is accepted.
    earlier.update(course="", referral_state="", referral_outcome_on="")
    result = _run(app, "import", "--tenant", "west-midlands", str(write(tmp_path / "order.csv", [later, earlier])))
    assert result.exit_code == 0, result.output


def test_a_bad_file_reports_every_bad_row_and_imports_nothing(app: Flask, world: World, tmp_path: Path) -> None:
    good = row(course=DURHAM_COURSE, referral_state="completed", referral_outcome_on="2024-06-28")
    rows = [
        good,                                                              # row 2
        row(date_of_birth="01/05/1994", ethnicity="X1"),                   # row 3
        row(personal_use="maybe", substances="cannabis;glue"),             # row 4
        row(course="no-such-course", referral_state="offered"),            # row 5
        row(referral_state="completed", course=DURHAM_COURSE),             # row 6
        row(offence_on="2024-03-05"),                                      # row 7 (after decided_on)
        row(course=DIVERT_COURSE, referral_state="offered"),               # row 8: not offered by Durham
        row(stage="street", course=DURHAM_COURSE, referral_state="offered"),  # row 9: not eligible
        row(decided_on="2099-01-01", offence_on="2099-01-01"),             # row 10
        row(decided_on="2014-06-01", offence_on="2014-06-01"),             # row 11: before Durham's policy
        row(surname="", date_of_birth="2020-01-01"),                       # row 12
        good,                                                              # row 13
    ]
    path = write(tmp_path / "bad.csv", rows)
    with path.open("a", encoding="utf-8") as out:
        out.write("Short,Row\n")                                           # row 14
    before = counts(app, world.b.id)
    result = _run(app, "import", "--tenant", "durham", str(path))
    assert result.exit_code == 1
    assert counts(app, world.b.id) == before
    expected = [
        "row 3, date_of_birth: must be a date as YYYY-MM-DD, not '01/05/1994'",
        "row 3, ethnicity: must be one of the 16+1 codes",
        "row 4, personal_use: must be true, false, yes or no (or empty when not known), not 'maybe'",
        "row 4, substances: 'glue' is not one of cannabis, cocaine",
        "row 5, course: no course 'no-such-course' in the catalogue",
        "row 6, referral_outcome_on: give the date the referral became completed (YYYY-MM-DD)",
        "row 7, offence_on: is after the decision date (2024-03-02)",
        "row 8, course: Durham Constabulary does not offer 'cranstoun-divert' for the 'checkpoint' pathway",
        "row 9, course: the decision is not eligible under policy v1 in force on 2024-03-02",
        "row 10, offence_on: cannot be in the future",
        "row 10, decided_on: cannot be in the future",
        "row 11, decided_on: Durham Constabulary has no published policy in force on 2014-06-01; "
        "the first takes effect on 2015-04-01",
        "row 12, surname: enter the person's surname",
        "row 12, date_of_birth: under 10 on the offence date",
        f"row 14: has 2 values; the header names {len(importer.COLUMNS)} columns",
    ]
    for line in expected:
        assert line in result.output
    assert "Nothing was imported. 15 problems in bad.csv:" in result.output
    assert "row 2" not in result.output
    assert "row 13" not in result.output


def test_header_problems_are_reported_before_any_row(app: Flask, world: World, tmp_path: Path) -> None:
    header = [c for c in importer.COLUMNS if c not in ("stage", "surname")] + ["age", "colour", "given_name"]
    path = write(tmp_path / "header.csv", [row(date_of_birth="not a date")], header=header)
    result = _run(app, "import", "--tenant", "durham", str(path))
    assert result.exit_code == 1
    for line in ("row 1, age: this fact is worked out by the platform; leave the column out",
                 "row 1, colour: not a column of the import file",
                 "row 1, given_name: this column appears twice",
                 "row 1, surname: this column is missing",
                 "row 1, stage: this column is missing"):
        assert line in result.output
    assert "row 2" not in result.output  # rows are not read under a wrong header

    # Optional columns may be left out; the others may come in any order and case.
    optional = [c.upper() for c in reversed(importer.COLUMNS) if c not in importer.OPTIONAL_COLUMNS]
    path = tmp_path / "minimal.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as out:  # as Excel saves "CSV UTF-8"
        writer = csv.writer(out)
        writer.writerow(optional)
        writer.writerow([row()[c.lower()] for c in optional])
    result = _run(app, "import", "--tenant", "durham", str(path))
    assert result.exit_code == 0, result.output

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "the file is empty" in _run(app, "import", "--tenant", "durham", str(empty)).output
    only_header = write(tmp_path / "only-header.csv", [])
    assert "row 2: the file has no rows after the header" in _run(
        app, "import", "--tenant", "durham", str(only_header)).output
    latin = tmp_path / "latin.csv"
    latin.write_bytes(",".join(importer.COLUMNS).encode() + b"\n" + ",".join(row().values()).encode()
                      + b"\n\xc9mile,Martin\n")
    assert "row 3: not UTF-8 text (invalid continuation byte); save the file as CSV UTF-8" in _run(
        app, "import", "--tenant", "durham", str(latin)).output
    assert "no force 'gotham'" in _run(app, "import", "--tenant", "gotham", str(path)).output


def test_progress_is_reported_while_importing(app: Flask, world: World, tmp_path: Path) -> None:
    rows = [row(surname=f"Person{n}", course=DURHAM_COURSE, referral_state="offered") for n in range(250)]
    path = write(tmp_path / "many.csv", rows)
    read: list[int] = []
    imported: list[int] = []
    with app.app_context(), scoped(world.b.id):
        durham = db.session.get(Tenant, world.b.id)
        assert durham is not None
        today = datetime.now(UTC).date()
        checked = importer.check_file(durham, path, today=today, progress=read.append)
        assert checked.rows == 250
        report = importer.import_checked(durham, checked, actor=SYSTEM, progress=imported.append)
        db.session.commit()
    assert sum(read) == path.stat().st_size
    assert imported == [100, 100, 50]
    assert report.rows == 250
    assert report.new_people == 250
    assert report.referrals == {State.OFFERED: 250}
    assert counts(app, world.b.id)["Referral"] == 250


def test_a_row_refused_during_the_import_undoes_the_whole_file(
        app: Flask, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rows are written a batch at a time; make the batches small, so that
    # rows are already written when a later one is refused.
    monkeypatch.setattr(importer, "WRITE_BATCH", 1)
    rows = [row(surname=f"Person{n}", course=DURHAM_COURSE, referral_state="accepted") for n in range(3)]
    path = write(tmp_path / "three.csv", rows)
    before = counts(app, world.b.id)
    with app.app_context(), scoped(world.b.id):
        durham = db.session.get(Tenant, world.b.id)
        assert durham is not None
        checked = importer.check_file(durham, path, today=datetime.now(UTC).date())
        # Between the passes the third row's referral becomes one its decision does not allow.
        rows[2]["stage"] = "street"
        write(path, rows)
        with pytest.raises(importer.ImportInvalid) as refused:
            importer.import_checked(durham, checked, actor=SYSTEM)
        assert [str(problem) for problem in refused.value.problems] == [
            "row 4, course: the decision is not eligible under policy v1 in force on 2024-03-02; "
            "only an eligible decision can lead to a referral"]
        assert db.session.scalar(select(func.count()).select_from(Referral)) == 2  # written, not committed
        db.session.rollback()
    assert counts(app, world.b.id) == before


@pytest.mark.parametrize("batch", [1, 2, importer.WRITE_BATCH])
def test_rows_written_in_any_batch_size_make_the_same_records(
        app: Flask, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    monkeypatch.setattr(importer, "WRITE_BATCH", batch)
    _import_durham_history(app, tmp_path)
    with app.app_context(), scoped(world.b.id):
        people = db.session.scalars(select(Person)).all()
        assert len(people) == 3
        # Sam's two rows, the second found by the PNC ID under another name, are one person.
        jones = next(p for p in people if open_identity(p.identity_sealed).surname == "Jones")
        assert jones.pnc_key is not None
        encounters = db.session.scalars(select(Encounter).where(Encounter.person_id == jones.id)).all()
        assert len(encounters) == 2
        outcomes = sorted((d.decided_on, d.outcome, d.facts["previous_diversions"])
                          for d in db.session.scalars(select(Decision)))
        assert outcomes == [(date(2024, 3, 2), "eligible", 0), (date(2024, 3, 2), "eligible", 0),
                            (date(2024, 3, 2), "needs_review", 0), (date(2025, 1, 10), "not_eligible", 1),
                            (date(2025, 2, 3), "eligible", 0)]
        assert sum(len(r.steps) for r in db.session.scalars(select(Referral))) == 13 + 2 + 3  # a session: two steps


def test_the_readme_documents_every_column() -> None:
    from diversion.config import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Importing historic cases", 1)[1].split("\n## ", 1)[0]
    for column in importer.COLUMNS:
        assert f"`{column}`" in section, column
    assert "`diversion import --tenant S FILE.csv [--check]`" in readme
    assert "`diversion referrals expire [--tenant S]`" in readme


def test_imported_referrals_take_their_place_in_the_providers_feed(
        app: Flask, world: World, tmp_path: Path) -> None:
    with app.app_context():  # the provider of Durham's course listens for webhooks
        course = db.session.scalar(select(Course).where(Course.slug == DURHAM_COURSE))
        assert course is not None
        webhooks.set_endpoint(course.provider, url="https://example.org/hooks", actor=SYSTEM)
        db.session.commit()
    _import_durham_history(app, tmp_path)
    with app.app_context(), scoped(world.b.id):
        referrals = {r.id: r for r in db.session.scalars(select(Referral))}
        entries = db.session.scalars(select(FeedEntry).order_by(FeedEntry.position)).all()
        assert {entry.referral_id for entry in entries} == set(referrals)
        assert all(entry.provider_id == referrals[entry.referral_id].provider_id for entry in entries)
        provider_id = entries[0].provider_id
        assert [entry.position for entry in entries] == [1, 2, 3]
        assert high_water(provider_id) == 3
        # History, not news: nothing is sent to a provider's webhook.
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_a_missed_session_imports_as_missed_waiting_for_a_rebooking(app: Flask, world: World,
                                                                      tmp_path: Path) -> None:
    path = write(tmp_path / "missed.csv", [
        row(course=DURHAM_COURSE, referral_state="missed", referral_outcome_on="2024-04-10"),
        row(surname="Jones", given_name="Sam", date_of_birth="1999-12-31", course=DURHAM_COURSE,
            referral_state="missing"),
    ])
    refused = _run(app, "import", "--tenant", "durham", str(path))
    assert refused.exit_code != 0
    assert "missed" in refused.output
    assert "'missing'" in refused.output
    path = write(tmp_path / "missed.csv", [
        row(course=DURHAM_COURSE, referral_state="missed", referral_outcome_on="2024-04-10")])
    result = _run(app, "import", "--tenant", "durham", str(path))
    assert result.exit_code == 0, result.output
    assert "referrals: missed 1" in result.output
    with app.app_context(), scoped(world.b.id):
        referral = db.session.scalars(select(Referral)).one()
        assert referral.state is State.MISSED
        assert referral.outcome_code is None  # still open: waiting for another session
        assert [s.to_state for s in referral.transitions] == [State.OFFERED, State.ACCEPTED, State.BOOKED,
                                                              State.MISSED]
        assert referral.transitions[-1].why is Why.DID_NOT_ATTEND
        assert referral.transitions[-1].account.startswith("Did not attend the session of ")
        [session] = referral.sessions
        assert session.attendance is Attendance.DID_NOT_ATTEND
        assert referral.sessions_attended == 0


def test_a_referral_ended_unfinished_imports_with_the_sessions_attended_before(app: Flask, world: World,
                                                                               tmp_path: Path) -> None:
    unfinished = {"course": DURHAM_COURSE, "referral_outcome_on": "2024-05-10"}
    path = write(tmp_path / "attended.csv", [
        row(referral_state="completed", sessions_attended="2", **unfinished),
        row(surname="Jones", referral_state="not_completed", sessions_attended="two", **unfinished),
        row(surname="Brown", referral_state="withdrawn", sessions_attended="5", **unfinished),
        row(surname="Green", referral_state="not_completed", sessions_attended="2", course=DURHAM_COURSE,
            referral_outcome_on="2024-08-01"),
    ])
    refused = _run(app, "import", "--tenant", "durham", str(path))
    assert refused.exit_code == 1
    for problem in (
            "row 2, sessions_attended: give it only for a referral that ended not_completed or withdrawn; "
            "leave it empty for any other state",
            "row 3, sessions_attended: must be a whole number of sessions, such as 2, not 'two'",
            f"row 4, sessions_attended: is 5, but '{DURHAM_COURSE}' has 5 sessions: a referral that attended "
            "every one is completed",
            "row 5, referral_outcome_on: is after the referral's deadline (2024-07-02): its sessions were held "
            "by then"):
        assert problem in refused.output
    assert counts(app, world.b.id)["Referral"] == 0

    path = write(tmp_path / "attended.csv", [
        row(referral_state="not_completed", sessions_attended="2", **unfinished),
        row(surname="Jones", referral_state="withdrawn", sessions_attended="0", **unfinished),
    ])
    result = _run(app, "import", "--tenant", "durham", str(path))
    assert result.exit_code == 0, result.output
    with app.app_context(), scoped(world.b.id):
        stopped, withdrawn = db.session.scalars(select(Referral).order_by(Referral.state)).all()
        assert (stopped.state, stopped.sessions_attended, stopped.outcome_code) == (
            State.NOT_COMPLETED, 2, "prosecution")
        assert [s.to_state for s in stopped.transitions] == [
            State.OFFERED, State.ACCEPTED, State.BOOKED, State.ATTENDED, State.BOOKED, State.ATTENDED,
            State.NOT_COMPLETED]
        assert [s.attendance for s in stopped.sessions] == [Attendance.ATTENDED, Attendance.ATTENDED]
        assert (withdrawn.state, withdrawn.sessions_attended) == (State.WITHDRAWN, 0)
        assert [s.to_state for s in withdrawn.transitions] == [State.OFFERED, State.WITHDRAWN]


def test_an_imported_case_tells_its_story_in_the_order_it_happened(app: Flask, world: World,
                                                                   tmp_path: Path) -> None:
    _import_durham_history(app, tmp_path)
    with app.app_context(), scoped(world.b.id):
        done = db.session.scalar(select(Referral).where(Referral.state == State.COMPLETED))
        assert done is not None
        reference = db.session.get(Encounter, done.encounter_id).reference
        db.session.rollback()
    client = app.test_client()
    sign_in(client, world.email("b_officer"))
    page = client.get(f"/durham/cases/{reference}")
    assert page.status_code == 200
    titles = re.findall(r'moj-timeline__title">([^<]*)<', page.text)
    bylines = re.findall(r'moj-timeline__byline">([^<]*)<', page.text)
    dates = re.findall(r'moj-timeline__date"><time datetime="([^"]*)"', page.text)
    # Newest first: the record's import (today), the referral's steps of 2024, then the decision of its day.
    assert titles[0] == "Record imported"
    assert titles[1].startswith("Referral completed")
    assert titles[-2] == "Referral offered"
    assert titles[-1].startswith("Decision: Eligible")
    assert dates[-1] == "2024-03-02"  # the decision's day in the record, not the hour of the import
    assert set(bylines) == {"by Import"}  # the import's steps, made by no person nor case system
    assert "in force on that day; decided when the record was imported" in page.text
    assert "Refer to a course" not in page.text  # the referral ended with its outcome
