"""`diversion policy test|decide|simulate`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo

from diversion.accounts.access import SYSTEM
from diversion.cli import main
from diversion.demo import seed_past_decisions
from diversion.extensions import db
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import TENANTS_DIR, World
from tests.eligibility.test_forces import adult
from tests.eligibility.test_versions import TODAY


def _run(app: Flask, *args: str):
    return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))


def test_policy_test_passes_for_all_five_forces(app: Flask, world: World) -> None:
    result = _run(app, "policy", "test")
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok ") == 5


def test_policy_test_fails_when_a_test_case_fails(app: Flask, world: World) -> None:
    from diversion.eligibility import services

    with app.app_context(), scoped(world.b.id):
        document = services.versions()[0].document
        document["tests"][0]["expect"] = "not_eligible"
        document["tests"][0].pop("pathway")
        services.save_draft(db.session.get(Tenant, world.b.id), document, actor=SYSTEM)
        db.session.commit()
    result = _run(app, "policy", "test", "--tenant", "durham")
    # The draft's failure is reported; the published version still passes.
    assert "v2 (draft): FAIL" in result.output
    assert "expected not_eligible, got eligible" in result.output


def test_decide_prints_the_decision_as_json(app: Flask, world: World, tmp_path: Path) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(adult(stage="custody", user_dealer=True, offence="supply", personal_use=False)))
    result = _run(app, "policy", "decide", "--tenant", "durham", "--facts", str(facts), "--on", "2026-06-01")
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["outcome"] == "eligible"
    assert decision["pathway"] == "checkpoint"
    assert decision["policy_version"] == 1
    assert set(decision) == {"outcome", "pathway", "unmet", "missing", "policy_version", "policy_hash"}

    facts.write_text(json.dumps(adult(age=16)))
    refused = json.loads(_run(app, "policy", "decide", "--tenant", "avon-and-somerset", "--facts", str(facts)).output)
    assert refused["outcome"] == "not_eligible"
    reason = "DEP is for people aged 18 or over; 10 to 17 year olds go to the youth service."
    assert {"pathway": "dep", "criterion": "adult", "reason": reason} in refused["unmet"]


def test_decide_refuses_bad_facts_with_a_clear_message(app: Flask, world: World, tmp_path: Path) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"age": "thirty", "hair": "red"}))
    result = _run(app, "policy", "decide", "--tenant", "durham", "--facts", str(facts))
    assert result.exit_code != 0
    assert "fact age: must be a whole number" in result.output
    assert "fact hair: is not a field of the national catalogue" in result.output
    facts.write_text("{not json")
    result = _run(app, "policy", "decide", "--tenant", "durham", "--facts", str(facts))
    assert result.exit_code != 0
    assert "not valid JSON" in result.output
    result = _run(app, "policy", "decide", "--tenant", "gotham", "--facts", str(facts))
    assert "no force 'gotham'" in result.output


def test_simulate_thames_valley_under_durhams_policy(app: Flask, world: World) -> None:
    with app.app_context():
        thames = db.session.scalar(db.select(Tenant).where(Tenant.slug == "thames-valley"))
        with scoped(thames.id):
            assert seed_past_decisions(thames, today=TODAY, count=300) == 300
        db.session.commit()
    result = _run(app, "policy", "simulate", "--tenant", "thames-valley", "--from-tenant", "durham")
    assert result.exit_code == 0, result.output
    assert "300 past decisions" in result.output
    assert "would change" in result.output
    assert "checkpoint / after-arrest" in result.output  # Durham's custody rule blocks street cases
    assert "by ethnicity" in result.output
    own = _run(app, "policy", "simulate", "--tenant", "thames-valley", "--policy",
               str(TENANTS_DIR / "thames-valley.toml"))
    assert own.exit_code == 0, own.output
    assert "300 past decisions; 0 would change" in own.output
    both = _run(app, "policy", "simulate", "--tenant", "thames-valley")
    assert both.exit_code != 0
    assert "exactly one of" in both.output
