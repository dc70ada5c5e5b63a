"""``diversion policy test|decide|simulate``: the same services as the pages and the API."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from diversion.commands import force, forces, today
from diversion.eligibility import services
from diversion.eligibility.compiler import CompiledPolicy, PolicyInvalid, compile_policy
from diversion.eligibility.document import split_policy
from diversion.eligibility.engine import run_tests
from diversion.eligibility.fields import FactsInvalid
from diversion.eligibility.simulation import Report
from diversion.inputs import InputRefused, load_json, load_toml
from diversion.tenancy.context import scoped


@click.group("policy")
def policy_group() -> None:
    """Eligibility policies: run their tests, decide a case, simulate a change."""


@policy_group.command("test")
@click.option("--tenant", "slug", help="One force (default: every force).")
@with_appcontext
def test_command(slug: str | None) -> None:
    """Run the test cases of each force's policy in force today (and its draft)."""
    tenants = forces(slug)
    failures = 0
    for tenant in tenants:
        with scoped(tenant.id):
            in_force = services.policy_in_force(today())
            draft = services.current_draft()
            if in_force is None:
                click.echo(f"{tenant.slug}: FAIL no published policy in force")
                failures += 1
            for version in filter(None, (in_force, draft)):
                # Outcomes and pathways by the ids the force's file writes.
                outcomes = run_tests(services.compiled(version), default_on=today())
                failed = [o for o in outcomes if not o.passed]
                status = "ok" if not failed else "FAIL"
                click.echo(f"{tenant.slug} v{version.number} ({version.status.value}): "
                           f"{status} {len(outcomes) - len(failed)}/{len(outcomes)} test cases pass")
                for outcome in failed:
                    click.echo(f"  - {outcome.name}: {'; '.join(outcome.problems)}")
                failures += len(failed) if version is in_force else 0
    if failures:
        sys.exit(1)


@policy_group.command("decide")
@click.option("--tenant", "slug", required=True, help="The force whose policy decides.")
@click.option("--facts", "facts_file", required=True, type=click.File("r"),
              help="A JSON object of case facts (the national field catalogue).")
@click.option("--on", "on", type=click.DateTime(["%Y-%m-%d"]), help="Decision date (default today).")
@with_appcontext
def decide_command(slug: str, facts_file: Any, on: datetime | None) -> None:
    """Decide one case and print the decision as JSON."""
    tenant = force(slug)
    try:
        facts = load_json(facts_file.read(), what="facts file")
    except InputRefused as error:
        raise click.BadParameter(str(error), param_hint="--facts") from error
    if not isinstance(facts, dict):
        raise click.BadParameter("must hold a JSON object of facts", param_hint="--facts")
    with scoped(tenant.id):
        try:
            decision, _ = services.decide_case(facts, on.date() if on else today())
        except FactsInvalid as error:
            for name, problem in error.problems.items():
                click.echo(f"fact {name}: {problem}", err=True)
            sys.exit(2)
        except services.NoPolicyInForce as error:
            raise click.ClickException(str(error)) from error
    click.echo(json.dumps(decision.as_json(), indent=2))


def _policy_from_file(path: Path) -> CompiledPolicy:
    try:
        text = path.read_text(encoding="utf-8")
        raw = load_json(text, what="policy") if path.suffix == ".json" else load_toml(text, what="policy")
    except (OSError, ValueError) as error:
        raise click.BadParameter(str(error), param_hint="--policy") from error
    if not isinstance(raw, dict):
        raise click.BadParameter("must hold a policy (a table of its parts)", param_hint="--policy")
    if "policy" in raw:  # a whole force file
        raw = split_policy(raw["policy"])[1]
    raw.pop("effective_from", None)
    try:
        return compile_policy(raw)
    except PolicyInvalid as error:
        raise click.ClickException("the policy is not valid:\n" + str(error)) from error


def print_report(report: Report) -> None:
    click.echo(f"\n{report.cases} past decisions; {report.changed} would change "
               f"({100 * report.changed / max(report.cases, 1):.1f}%).\n")
    columns = report.new_labels
    width = max([len(c) for c in columns] + [len(r) for r in report.table] + [12])
    click.echo("then \\ now".ljust(width) + "".join(c.rjust(width + 2) for c in columns))
    for old, row in sorted(report.table.items()):
        click.echo(old.ljust(width) + "".join(str(row.get(c, 0)).rjust(width + 2) for c in columns))
    click.echo("\nHow often each criterion blocks:")
    for pathway, criterion, reason, count in report.blocking:
        click.echo(f"  {count:>8}  {pathway or 'exclusion'} / {criterion}: {reason}")
    for title, groups in (("age band", report.by_age_band), ("ethnicity", report.by_ethnicity)):
        click.echo(f"\nEligible before and after, by {title}:")
        for group in groups:
            click.echo(f"  {group.group:<8} {group.cases:>8} cases  {group.eligible_before:>8} -> "
                       f"{group.eligible_after:<8} ({group.change:+d})")


@policy_group.command("simulate")
@click.option("--tenant", "slug", required=True, help="The force whose past decisions are replayed.")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A policy (TOML or JSON; a whole force file works too).")
@click.option("--from-tenant", "other", help="Use this force's published policy instead.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only decisions on or after this date.")
@with_appcontext
def simulate_command(slug: str, policy_file: Path | None, other: str | None, since: datetime | None) -> None:
    """Replay a force's past decisions under another policy and show what changes."""
    if (policy_file is None) == (other is None):
        raise click.UsageError("give exactly one of --policy FILE or --from-tenant FORCE")
    tenant = force(slug)
    if other is not None:
        source = force(other)
        version = services.published_policy_of(source, today())
        if version is None:
            raise click.ClickException(f"{other} has no published policy in force")
        policy = services.compiled(version)
        click.echo(f"Policy: {source.name} v{version.number} ({version.content_hash[:19]})")
    elif policy_file is not None:
        policy = _policy_from_file(policy_file)
        click.echo(f"Policy: {policy_file} ({policy.content_hash[:19]})")
    with scoped(tenant.id):
        day = since.date() if since else None
        total = services.count_past_decisions(day)
        with click.progressbar(length=total, label=f"Replaying {tenant.name}'s decisions") as bar:
            report = services.simulate(policy, day, progress=bar.update)
    print_report(report)
