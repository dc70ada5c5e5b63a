"""Policy versions: drafts, tests before publication, immutability, the version in force."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from flask import Flask
from sqlalchemy import event, text

from diversion.accounts.access import SYSTEM
from diversion.audit.models import AuditEvent
from diversion.cases import services as cases
from diversion.eligibility import services
from diversion.eligibility.compiler import PolicyInvalid
from diversion.eligibility.engine import decide
from diversion.eligibility.models import Decision, PolicyVersion, PublishedPolicyImmutable
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World
from tests.eligibility.test_forces import adult

TODAY = date(2026, 11, 24)


def _durham(world: World) -> Tenant:
    tenant = db.session.get(Tenant, world.b.id)
    assert tenant is not None
    return tenant


def _document(version: PolicyVersion) -> dict:
    return copy.deepcopy(version.document)


def test_sync_published_each_force_policy_once(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        versions = services.versions()
        assert [(v.number, v.status.value) for v in versions] == [(1, "published")]
        assert versions[0].effective_from == date(2015, 4, 1)
        assert versions[0].content_hash.startswith("sha256:")


def test_draft_with_failing_tests_cannot_be_published(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        document = _document(services.versions()[0])
        document["parameters"]["adult_age"][0]["value"] = 21  # breaks "18 exactly"
        draft = services.save_draft(tenant, document, actor=SYSTEM, note="raise the age")
        assert draft.number == 2
        saved = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "policy.draft_saved")
                                  .order_by(AuditEvent.occurred_at.desc()).limit(1))
        assert saved is not None
        assert saved.details["note"] == "raise the age"  # the log says what changed, as the draft does
        with pytest.raises(services.PolicyError, match="18 exactly"):
            services.publish(tenant, draft, effective_from=TODAY, actor=SYSTEM, today=TODAY)
        assert not draft.is_published


def test_invalid_draft_is_refused_and_nothing_is_saved(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        document = _document(services.versions()[0])
        document["pathways"][0]["criteria"][0]["expression"] = "stagee == 'custody'"
        with pytest.raises(PolicyInvalid):
            services.save_draft(tenant, document, actor=SYSTEM)
        db.session.rollback()
        assert services.current_draft() is None


def test_publish_then_the_new_version_is_in_force_from_its_date(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        first = services.versions()[0]
        document = _document(first)
        document["parameters"]["max_offence_age_days"].append({"from": "2027-01-01", "value": 183})
        document["tests"].append({"name": "five months is fine from 2027", "facts": {"offence_age_days": 150},
                                  "on": "2027-02-01", "expect": "eligible", "pathway": "checkpoint"})
        draft = services.save_draft(tenant, document, actor=SYSTEM)
        with pytest.raises(services.PolicyError, match="on or after"):
            services.publish(tenant, draft, effective_from=date(2010, 1, 1), actor=SYSTEM, today=TODAY)
        published = services.publish(tenant, draft, effective_from=date(2026, 12, 1), actor=SYSTEM, today=TODAY)
        db.session.commit()
        assert services.policy_in_force(date(2026, 11, 30)).number == first.number
        assert services.policy_in_force(date(2026, 12, 1)).number == published.number
        # Read once for a bulk job, the versions give the same answer on every day, compiled.
        in_force = services.PoliciesInForce()
        for day in (date(2000, 1, 1), first.effective_from, date(2026, 11, 30), date(2026, 12, 1), date(2030, 1, 1)):
            expected = services.policy_in_force(day)
            found = in_force.on(day)
            assert (found[0].number if found else None) == (expected.number if expected else None)
            if found is not None:
                assert found[1] is in_force.on(day)[1]
                assert found[1].content_hash == found[0].content_hash
        changes = services.diff(first, published)
        assert [(c.kind, c.what, c.name) for c in changes] == [("changed", "parameter", "max_offence_age_days")]


def test_a_worker_keeps_the_version_in_force_until_the_force_publishes_another(app: Flask, world: World) -> None:
    """Given the force's row, the version in force is read once per worker, row and day; publishing a
    version changes the force's row, so the next intake finds the new one at once."""
    reads: list[str] = []

    def note(*arguments: object) -> None:
        if "FROM policy_versions" in str(arguments[2]):
            reads.append(str(arguments[2]))

    with app.app_context(), scoped(world.b.id):
        event.listen(db.engine, "before_cursor_execute", note)
        try:
            first = services.versions()[0]
            assert services.policy_in_force(TODAY, force=_durham(world)).number == first.number
            db.session.commit()
            read = len(reads)
            kept = services.policy_in_force(TODAY, force=_durham(world))
            assert kept is not None
            assert (kept.number, kept.content_hash, kept.document) == (first.number, first.content_hash,
                                                                       first.document)
            assert services.policy_in_force(date(2026, 11, 25), force=_durham(world)).number == first.number
            assert len(reads) == read + 2  # the kept version's document, read when used; another day's version
            db.session.commit()
            document = _document(first)
            document["parameters"]["max_offence_age_days"].append({"from": "2030-01-01", "value": 183})
            draft = services.save_draft(_durham(world), document, actor=SYSTEM)
            published = services.publish(_durham(world), draft, effective_from=TODAY, actor=SYSTEM, today=TODAY)
            db.session.commit()
            assert services.policy_in_force(TODAY, force=_durham(world)).number == published.number
        finally:
            event.remove(db.engine, "before_cursor_execute", note)


def test_published_versions_never_change(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        published = services.versions()[0]
        published.note = "rewriting history"
        with pytest.raises(PublishedPolicyImmutable):
            db.session.flush()
        db.session.rollback()
        if db.engine.dialect.name == "postgresql":
            # The database refuses too, even through raw SQL.
            with pytest.raises(Exception, match="published and cannot change"):
                db.session.execute(text("UPDATE policy_versions SET note = 'x'"))
            db.session.rollback()


def test_a_stored_decision_re_runs_to_the_same_answer(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.b.id):
        tenant = _durham(world)
        result, version = services.decide_case(adult(stage="custody"), TODAY)
        stored = cases.record_decision(tenant, result, version, ethnicity="B2", actor=SYSTEM)
        db.session.commit()
        again = db.session.get(Decision, stored.id)
        replay = decide(services.compiled(again.policy_version), again.facts, again.decided_on,
                        version=again.policy_version.number)
        assert (replay.outcome, replay.pathway) == (again.outcome, again.pathway) == ("eligible", "checkpoint")
        assert replay.results_json() == again.results
        assert again.unmet == replay.unmet_ids()
        assert again.policy_hash == version.content_hash
        assert (again.age_band, again.ethnicity) == ("25-34", "B2")
        audited = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "decision.recorded")).all()
        assert [(e.object_id, e.tenant_id) for e in audited] == [(str(stored.id), world.b.id)]
        with pytest.raises(cases.CaseError, match="16\\+1"):
            cases.record_decision(tenant, result, version, ethnicity="ZZ", actor=SYSTEM)


def test_another_forces_published_policy_can_be_read_for_simulation(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        durham = db.session.get(Tenant, world.b.id)
        other = services.published_policy_of(durham, TODAY)
        assert other is not None
        assert other.tenant_id == world.b.id
        # The force's own list stays its own.
        own = services.versions()
        assert own
        assert all(v.tenant_id == world.a.id for v in own)
