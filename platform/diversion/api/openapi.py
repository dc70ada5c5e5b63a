"""The OpenAPI 3.1 document of API v1, assembled from the pydantic models.

Request schemas are the models' validation schemas and response schemas
their serialisation schemas, so the document cannot drift from what the
code accepts and returns. Every operation lists every answer it can give,
errors included.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from diversion.api import schemas

PREFIX = "/api/v1"
JSON = "application/json"
_REQUESTS: tuple[type[BaseModel], ...] = (schemas.EncounterIn, schemas.ReferralIn, schemas.TransitionIn)
_RESPONSES: tuple[type[BaseModel], ...] = (
    schemas.EncounterRecord, schemas.DecisionOut, schemas.ReferralOut, schemas.ReferralPage,
    schemas.TransitionRecord, schemas.OfferingList, schemas.ErrorBody,
)

DESCRIPTION = """\
The JSON API of the diversion platform, for a police force's own systems.

Each force admin makes bearer tokens for their force's systems on the force's
*API tokens* page; a token works for that force only and is shown once. Send it
as `Authorization: Bearer <token>`. A signed-in browser session does not open
the API.

Recording an encounter decides it at once with the force's policy in force that
day. An eligible decision can lead to a referral to a course the force offers for
the decision's pathway; the referral then moves through its lifecycle
(offered, accepted or declined, booked, attended, completed; or not completed or
withdrawn, with a reason) and the case gets the force's outcome.

Errors are JSON: `{"errors": [{"field": ..., "message": ...}]}`. Bad input gets
422 with every field at fault and changes nothing; a missing, unknown or revoked
token gets 401; an id that does not exist, or belongs to another force, gets 404;
a body over 256 KiB gets 413.
"""


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}


ERRORS: dict[str, dict[str, Any]] = {
    "Unauthorized": {
        **_error("No bearer token, or one that is malformed, unknown or revoked."),
        "headers": {"WWW-Authenticate": {"description": "The bearer scheme.", "schema": {"type": "string"}}},
    },
    "NotFound": _error("No such item in this force."),
    "Unprocessable": _error("The request was refused; each error names the field at fault. Nothing changed."),
    "TooLarge": _error("The body is over 256 KiB and was not read."),
}


def _ok(status: str, description: str, ref: str) -> dict[str, Any]:
    return {status: {"description": description, "content": {JSON: {"schema": ref_to(ref)}}}}


def ref_to(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*names: str) -> dict[str, Any]:
    codes = {"Unauthorized": "401", "NotFound": "404", "TooLarge": "413", "Unprocessable": "422"}
    return {codes[name]: {"$ref": f"#/components/responses/{name}"} for name in names}


def _path_id(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": f"The {what}'s id.",
            "schema": {"type": "string", "format": "uuid"}}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": ref_to(name)}}}


def _operation(operation_id: str, summary: str, tag: str, responses: dict[str, Any],
               **extra: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "summary": summary, "tags": [tag], **extra, "responses": responses}


def _paths(names: dict[type[BaseModel], str]) -> dict[str, Any]:
    encounter, decision, referral = (_path_id("encounter_id", "encounter"), _path_id("decision_id", "decision"),
                                     _path_id("referral_id", "referral"))
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
        f"{PREFIX}/encounters": {"post": _operation(
            "recordEncounter", "Record an encounter and decide it", "Encounters",
            {**_ok("201", "Recorded and decided.", names[schemas.EncounterRecord]),
             **_errors("Unauthorized", "TooLarge", "Unprocessable")},
            description="Decides with the policy in force today and returns the decision with every reason.",
            requestBody=_body(names[schemas.EncounterIn]))},
        f"{PREFIX}/encounters/{{encounter_id}}": {"get": _operation(
            "getEncounter", "An encounter and its decision", "Encounters",
            {**_ok("200", "The encounter.", names[schemas.EncounterRecord]),
             **_errors("Unauthorized", "NotFound")},
            parameters=[encounter])},
        f"{PREFIX}/decisions/{{decision_id}}": {"get": _operation(
            "getDecision", "A decision with its reasons", "Decisions",
            {**_ok("200", "The decision.", names[schemas.DecisionOut]), **_errors("Unauthorized", "NotFound")},
            parameters=[decision])},
        f"{PREFIX}/decisions/{{decision_id}}/referrals": {"post": _operation(
            "referDecision", "Refer the person to a course", "Referrals",
            {**_ok("201", "Offered.", names[schemas.ReferralOut]),
             **_errors("Unauthorized", "NotFound", "TooLarge", "Unprocessable")},
            description="Refused for a decision that is not eligible (or overridden to eligible), a course the "
                        "force does not offer for the decision's pathway, and a second open referral.",
            parameters=[decision], requestBody=_body(names[schemas.ReferralIn]))},
        f"{PREFIX}/referrals": {"get": _operation(
            "listReferrals", "The force's referrals, newest first", "Referrals",
            {**_ok("200", "A page of referrals.", names[schemas.ReferralPage]),
             **_errors("Unauthorized", "Unprocessable")},
            parameters=list_parameters)},
        f"{PREFIX}/referrals/{{referral_id}}": {"get": _operation(
            "getReferral", "A referral with its history", "Referrals",
            {**_ok("200", "The referral.", names[schemas.ReferralOut]), **_errors("Unauthorized", "NotFound")},
            parameters=[referral])},
        f"{PREFIX}/referrals/{{referral_id}}/transitions": {"post": _operation(
            "moveReferral", "Move a referral on", "Referrals",
            {**_ok("201", "Moved.", names[schemas.TransitionRecord]),
             **_errors("Unauthorized", "NotFound", "TooLarge", "Unprocessable")},
            description="Refused for a move the lifecycle does not allow (the error lists those it does), "
                        "completion before every session is attended, and ending without a reason.",
            parameters=[referral], requestBody=_body(names[schemas.TransitionIn]))},
        f"{PREFIX}/offerings": {"get": _operation(
            "listOfferings", "The courses the force offers, by pathway", "Referrals",
            {**_ok("200", "The force's offerings.", names[schemas.OfferingList]), **_errors("Unauthorized")})},
        f"{PREFIX}/openapi.json": {"get": _operation(
            "getOpenApi", "This document", "Document",
            {"200": {"description": "The OpenAPI 3.1 document.", "content": {JSON: {"schema": {"type": "object"}}}}},
            security=[])},
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document: a copy, for the caller to keep or change."""
    return copy.deepcopy(_document())


@cache
def _document() -> dict[str, Any]:
    """Built once per process: it depends on the code only."""
    keys: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for model in _REQUESTS),
        *((model, "serialization") for model in _RESPONSES),
    ]
    refs, top = models_json_schema(keys, ref_template="#/components/schemas/{model}")
    names = {model: refs[(model, mode)]["$ref"].rsplit("/", 1)[1] for model, mode in keys}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "diversion API", "version": "1.0.0", "description": DESCRIPTION},
        "tags": [{"name": name} for name in ("Encounters", "Decisions", "Referrals", "Document")],
        "security": [{"bearer": []}],
        "paths": _paths(names),
        "components": {
            "schemas": top["$defs"],
            "responses": ERRORS,
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "A token made by the force admin on the force's API tokens page."}},
        },
    }
