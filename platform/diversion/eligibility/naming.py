"""Outcomes and pathways named for people, in the reader's language: an outcome by its label
("Needs review"), a pathway by the name its policy gives it ("DIVERT (adults)"), a criterion
by why it blocks, never by the ids a policy's file and the stored decisions use
("needs_review", "divert", "after-arrest")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import gettext as _

from diversion.eligibility.compiler import CompiledPolicy
from diversion.eligibility.models import Outcome
from diversion.eligibility.simulation import unlabel
from diversion.monitoring import ETHNICITIES, UNKNOWN_BAND
from diversion.words import current_language


@dataclass(frozen=True)
class Names:
    """The names of some policies' pathways, by id, in the reader's language (``of``).

    A ``Wording`` for a policy's test cases (``engine.run_tests``)."""

    pathways: Mapping[str, str]

    @classmethod
    def of(cls, *policies: CompiledPolicy) -> Names:
        """The pathways of ``policies``: where two name the same id, the first's name."""
        language = current_language()
        found: dict[str, str] = {}
        for policy in policies:
            for pathway in policy.pathways:
                found.setdefault(pathway.id, pathway.name_in(language))
        return cls(found)

    def outcome(self, outcome: str) -> str:
        """Its label: "Eligible", "Not eligible" or "Needs review"."""
        return Outcome(outcome).label

    def pathway(self, pathway: str | None) -> str:
        """A pathway's name; "no pathway" for None. A pathway none of the policies has
        (never expected) keeps its id."""
        if pathway is None:
            return str(_("no pathway"))
        return self.pathways.get(pathway, pathway)

    def verdict(self, outcome: str, pathway: str | None) -> str:
        """An outcome, with its pathway's name when there is one: "Eligible, DIVERT (adults)"."""
        said = self.outcome(outcome)
        return str(_("%(outcome)s, %(pathway)s", outcome=said, pathway=self.pathway(pathway))) if pathway else said

    def label(self, label: str) -> str:
        """A simulation report's outcome (``simulation.label``) in words."""
        return self.verdict(*unlabel(label))


@dataclass(frozen=True)
class ReportNames:
    """How a simulation's report names outcomes and pathways: ``then``, as the force's own
    policies name what it decided; ``now``, as the policy tried names what it would decide;
    and says why each criterion of the policy tried blocks (``reasons``, by pathway and criterion),
    all in the reader's language (``of``)."""

    then: Names
    now: Names
    reasons: Mapping[tuple[str | None, str], str]

    @classmethod
    def of(cls, tried: CompiledPolicy, *, then: Names) -> ReportNames:
        language = current_language()
        reasons: dict[tuple[str | None, str], str] = {(None, c.id): c.reason_in(language) for c in tried.exclusions}
        reasons.update({(p.id, c.id): c.reason_in(language) for p in tried.pathways for c in p.criteria})
        return cls(then, Names.of(tried), reasons)

    def reason(self, pathway: str | None, criterion: str, kept: str) -> str:
        """Why a criterion blocks, as the policy tried says it in the reader's language; the
        report ``kept`` it in English, said where the policy tried has no such criterion."""
        return self.reasons.get((pathway, criterion), kept)

    @staticmethod
    def age_band(band: str) -> str:
        """An age band as the report names it: "25-34", or "Not known" for an age not known."""
        return str(_("Not known")) if band == UNKNOWN_BAND else band

    @staticmethod
    def ethnicity(code: str) -> str:
        """One of the 16+1 categories as police forces record it, its code and its name:
        "W1 – White: British"; a code outside them (never expected) by itself."""
        name = ETHNICITIES.get(code)
        return code if name is None else f"{code} – {name}"
