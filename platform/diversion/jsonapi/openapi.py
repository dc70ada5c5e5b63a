"""The OpenAPI 3.1 document of API v1, made of the parts of the APIs an app serves.

The force API (``diversion.api``) and the provider API
(``diversion.providers``) each describe their operations in a ``Part``,
which their blueprint brings to the app it is registered on:
the pydantic models they read and write, their paths and webhooks. Request
schemas are the models' validation schemas and response schemas their
serialisation schemas, so the document cannot drift from what the code
accepts and returns. Every operation lists every answer it can give,
errors included.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from diversion.jsonapi.http import PREFIX
from diversion.jsonapi.schemas import ErrorBody

JSON = "application/json"
Names = dict[type[BaseModel], str]  # each model's name in the document's components


@dataclass(frozen=True)
class Part:
    """What one API adds to the document."""

    name: str
    requests: tuple[type[BaseModel], ...]
    responses: tuple[type[BaseModel], ...]
    paths: Callable[[Names], dict[str, Any]]
    description: str
    tags: tuple[str, ...]
    security_schemes: dict[str, Any]
    webhooks: Callable[[Names], dict[str, Any]] = field(default=lambda _names: {})


def with_part(blueprint: Blueprint, part: Part) -> Blueprint:
    """Bring ``part`` to every app ``blueprint`` is registered on."""
    blueprint.record_once(lambda state: state.app.extensions.setdefault("openapi_parts", {}).update(
        {part.name: part}))
    return blueprint


INTRODUCTION = """\
The JSON API of the diversion platform: for a police force's own systems and for
the providers that deliver its courses.

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
a body over 256 KiB gets 413. When the database cannot answer for a moment
(stopped, restarting, overloaded), every operation gets 503 with `Retry-After`
(seconds): send the request again after that.

**Idempotency-Key.** The creating operations (record an encounter, refer,
move a referral, and a provider's move) take an optional header
`Idempotency-Key: <1 to 255 visible ASCII characters>`, a new one for each
new request (a UUID, say). Send the same request again with the same key,
after a timeout, a dropped connection or a 503, and it is done at most once:
if it was done, the first answer comes back as it was, marked
`Idempotent-Replayed: true`; if not, it is done now. Two requests with the
same key at the same moment give one effect. A key is kept per token for 24
hours; the same key with another request (method, path or body) gets 422
naming the header. A refused request (4xx) keeps no key: correct it and send
it again with the same key.
"""


def error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}


ERRORS: dict[str, dict[str, Any]] = {
    "Unauthorized": {
        **error("No bearer token, or one that is malformed, unknown or revoked."),
        "headers": {"WWW-Authenticate": {"description": "The bearer scheme.", "schema": {"type": "string"}}},
    },
    "NotFound": error("No such item in this force."),
    "Unprocessable": error("The request was refused; each error names the field at fault. Nothing changed."),
    "TooLarge": error("The body is over 256 KiB and was not read."),
    "ProviderUnauthorized": {
        **error("No provider token, or one that is malformed, unknown or revoked (a force token does not "
                 "open these operations)."),
        "headers": {"WWW-Authenticate": {"description": "The bearer scheme.", "schema": {"type": "string"}}},
    },
    "ProviderNotFound": error("The provider has no such referral (another provider's is not found either)."),
    "Conflict": error("The referral's state does not allow this move now; the error says which it does. "
                       "Nothing changed."),
    "Unavailable": {
        **error("The database cannot answer for a moment: send the request again after Retry-After seconds "
                 "(with the same Idempotency-Key, for a creating request)."),
        "headers": {"Retry-After": {"description": "Seconds to wait before trying again.",
                                    "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
    },
}
IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "A new key for each new request (a UUID, say). The same request sent again with the same key "
                   "within 24 hours is done at most once, and gets the first answer again.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}
REPLAYED: dict[str, Any] = {"Idempotent-Replayed": {
    "description": "`true` when this is the kept answer of an earlier request with the same Idempotency-Key.",
    "schema": {"type": "string", "const": "true"}}}


def ok(status: str, description: str, ref: str) -> dict[str, Any]:
    return {status: {"description": description, "content": {JSON: {"schema": ref_to(ref)}}}}


def created(description: str, ref: str) -> dict[str, Any]:
    """201 of a creating operation, which may be the replay of an earlier answer."""
    answer = ok("201", description, ref)
    answer["201"]["headers"] = REPLAYED
    return answer


def ref_to(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def errors(*names: str) -> dict[str, Any]:
    codes = {"Unauthorized": "401", "NotFound": "404", "TooLarge": "413", "Unprocessable": "422",
             "ProviderUnauthorized": "401", "ProviderNotFound": "404", "Conflict": "409", "Unavailable": "503"}
    # Any operation that reads the database can meet it unavailable.
    return {codes[name]: {"$ref": f"#/components/responses/{name}"} for name in (*names, "Unavailable")}


def path_id(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": f"The {what}'s id.",
            "schema": {"type": "string", "format": "uuid"}}


def body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": ref_to(name)}}}


def operation(operation_id: str, summary: str, tag: str, responses: dict[str, Any],
               **extra: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "summary": summary, "tags": [tag], **extra, "responses": responses}


def creating(operation_id: str, summary: str, tag: str, done: tuple[str, str], request_body: str, *,
             refusals: dict[str, Any], path: tuple[dict[str, Any], ...] = (), description: str | None = None,
             **extra: Any) -> dict[str, Any]:
    """A creating operation: a JSON body (``request_body``), an optional ``Idempotency-Key``,
    and 201 with ``done`` (what it says, what it answers), or one of its ``refusals``."""
    described = {"description": description} if description is not None else {}
    return operation(operation_id, summary, tag, {**created(*done), **refusals}, **described,
                     parameters=[*path, IDEMPOTENCY_KEY], requestBody=body(request_body), **extra)



def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the APIs ``app`` serves: a copy, for the caller to keep or change."""
    parts: dict[str, Part] = app.extensions.get("openapi_parts", {})
    built: dict[tuple[str, ...], dict[str, Any]] = app.extensions.setdefault("openapi_document", {})
    key = tuple(parts)  # built once per app, and again should a part come later
    if key not in built:
        built.clear()
        built[key] = _document(list(parts.values()))
    return copy.deepcopy(built[key])


def _document(parts: list[Part]) -> dict[str, Any]:
    keys: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for part in parts for model in part.requests),
        *((model, "serialization") for part in parts for model in part.responses),
        (ErrorBody, "serialization"),
    ]
    keys = list(dict.fromkeys(keys))
    refs, top = models_json_schema(keys, ref_template="#/components/schemas/{model}")
    names = {model: refs[(model, mode)]["$ref"].rsplit("/", 1)[1] for model, mode in keys}
    paths: dict[str, Any] = {}
    webhooks: dict[str, Any] = {}
    schemes: dict[str, Any] = {}
    for part in parts:
        paths.update(part.paths(names))
        webhooks.update(part.webhooks(names))
        schemes.update(part.security_schemes)
    paths[f"{PREFIX}/openapi.json"] = {"get": operation(
        "getOpenApi", "This document", "Document",
        {"200": {"description": "The OpenAPI 3.1 document.", "content": {JSON: {"schema": {"type": "object"}}}}},
        security=[])}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "diversion API", "version": "1.0.0",
                 "description": "\n".join([INTRODUCTION, *(part.description for part in parts)])},
        "tags": [{"name": name} for part in parts for name in part.tags] + [{"name": "Document"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "webhooks": webhooks,
        "components": {"schemas": top["$defs"], "responses": ERRORS, "securitySchemes": schemes},
    }
