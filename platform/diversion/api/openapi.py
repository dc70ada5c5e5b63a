"""The force API's part of the OpenAPI document (``jsonapi.openapi``)."""

from __future__ import annotations

from typing import Any

from diversion.api import schemas
from diversion.jsonapi.http import PREFIX
from diversion.jsonapi.openapi import (
    Names,
    Part,
    creating,
    errors,
    ok,
    operation,
    path_id,
    ref_to,
)


def _paths(names: Names) -> dict[str, Any]:
    decision, referral = path_id("decision_id", "decision"), path_id("referral_id", "referral")
    encounter = {"name": "encounter_id", "in": "path", "required": True,
                 "description": "The encounter's id, or its case reference (e.g. WM-2026-004217, in any case).",
                 "schema": {"type": "string", "minLength": 1, "maxLength": 40}}
    query = schemas.ReferralQuery.model_fields
    list_parameters = [
        {"name": "state", "in": "query", "required": False, "description": "Only referrals in this state.",
         "schema": ref_to("State")},
        {"name": "limit", "in": "query", "required": False, "description": "How many referrals per page.",
         "schema": {"type": "integer", "minimum": 1, "maximum": schemas.MAX_PAGE,
                    "default": query["limit"].default}},
        {"name": "offset", "in": "query", "required": False, "description": "How many to skip, newest first.",
         "schema": {"type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0}},
    ]
    return {
        f"{PREFIX}/encounters": {"post": creating(
            "recordEncounter", "Record an encounter and decide it", "Encounters",
            ("Recorded and decided.", names[schemas.EncounterRecord]), names[schemas.EncounterIn],
            refusals=errors("Unauthorized", "TooLarge", "Unprocessable"),
            description="Decides with the policy in force today and returns the decision with every reason.")},
        f"{PREFIX}/encounters/{{encounter_id}}": {"get": operation(
            "getEncounter", "An encounter and its decision, by id or case reference", "Encounters",
            {**ok("200", "The encounter.", names[schemas.EncounterRecord]),
             **errors("Unauthorized", "NotFound")},
            parameters=[encounter])},
        f"{PREFIX}/decisions/{{decision_id}}": {"get": operation(
            "getDecision", "A decision with its reasons", "Decisions",
            {**ok("200", "The decision.", names[schemas.DecisionOut]), **errors("Unauthorized", "NotFound")},
            parameters=[decision])},
        f"{PREFIX}/decisions/{{decision_id}}/referrals": {"post": creating(
            "referDecision", "Refer the person to a course", "Referrals",
            ("Offered.", names[schemas.ReferralOut]), names[schemas.ReferralIn],
            refusals=errors("Unauthorized", "NotFound", "TooLarge", "Unprocessable"), path=(decision,),
            description="Refused for a decision that is not eligible (or overridden to eligible), a course the "
                        "force does not offer for the decision's pathway, and a second open referral.")},
        f"{PREFIX}/referrals": {"get": operation(
            "listReferrals", "The force's referrals, newest first", "Referrals",
            {**ok("200", "A page of referrals.", names[schemas.ReferralPage]),
             **errors("Unauthorized", "Unprocessable")},
            parameters=list_parameters)},
        f"{PREFIX}/referrals/{{referral_id}}": {"get": operation(
            "getReferral", "A referral with its history", "Referrals",
            {**ok("200", "The referral.", names[schemas.ReferralOut]), **errors("Unauthorized", "NotFound")},
            parameters=[referral])},
        f"{PREFIX}/referrals/{{referral_id}}/transitions": {"post": creating(
            "moveReferral", "Move a referral on", "Referrals",
            ("Moved.", names[schemas.TransitionRecord]), names[schemas.TransitionIn],
            refusals=errors("Unauthorized", "NotFound", "TooLarge", "Unprocessable"), path=(referral,),
            description="Refused for a move the lifecycle does not allow (the error lists those it does), "
                        "completion before every session is attended, and ending without a reason. "
                        "`missed` records a booked session as not attended: the referral waits for another "
                        "booking, or ends as `not_completed` beyond the force's missed sessions allowed or at "
                        "its deadline.")},
        f"{PREFIX}/offerings": {"get": operation(
            "listOfferings", "The courses the force offers, by pathway", "Referrals",
            {**ok("200", "The force's offerings.", names[schemas.OfferingList]), **errors("Unauthorized")})},
    }


PART = Part(
    name="force",
    requests=(schemas.EncounterIn, schemas.ReferralIn, schemas.TransitionIn),
    responses=(schemas.EncounterRecord, schemas.DecisionOut, schemas.ReferralOut, schemas.ReferralPage,
               schemas.TransitionRecord, schemas.OfferingList),
    paths=_paths,
    description="",
    tags=("Encounters", "Decisions", "Referrals"),
    security_schemes={"bearer": {"type": "http", "scheme": "bearer",
                                 "description": "A token made by the force admin on the force's API tokens page."}},
)
