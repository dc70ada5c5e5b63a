"""What every JSON API call goes through: its body read and checked, its answer, its problems.

One request is one unit of work, committed once at its end (``unit``),
after its answer is serialised: nothing is read after the commit, which
may be the moment the connection drops, and an answer must never be built
from a reload that fails, or tell of an effect that is not there (when the
commit fails, the answer is replaced). Errors are JSON,
``{"errors": [{"field": ..., "message": ...}]}``, never a page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from diversion import outage
from diversion.db import utcnow
from diversion.errors import AccessRefused, AddressRefused
from diversion.extensions import csrf
from diversion.jsonapi import idempotency
from diversion.jsonapi.schemas import ErrorBody, ErrorItem

PREFIX = "/api/v1"
M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")
# An encounter is a few kilobytes; anything far larger is refused (413) unread.
MAX_BODY_BYTES = 256 * 1024
UNAUTHORIZED = "Send a valid API token: Authorization: Bearer <token>."
# Friendlier words for the commonest validation errors; the rest keep pydantic's.
MESSAGES = {
    "missing": "This field is required.",
    "extra_forbidden": "This is not a field or parameter of this request.",
    "string_pattern_mismatch": "Control characters are not allowed here.",
    "model_type": "This must be a JSON object.",
    "model_attributes_type": "This must be a JSON object.",
}
HTTP_MESSAGES = {
    401: UNAUTHORIZED,
    404: "There is no such item in this force.",
    405: "This method is not allowed here.",
    413: "The request is too large.",
    429: "Too many requests: slow down.",
}
# A field-specific word on a validation error: (location, kind) -> message or None.
Explain = Callable[[tuple[int | str, ...], str], str | None]


class ApiProblem(Exception):  # noqa: N818 - the answer, not a fault of the code
    """An answer other than success, with the fields at fault."""

    def __init__(self, status: int, errors: Iterable[tuple[str | None, str]]) -> None:
        super().__init__(status)
        self.status = status
        self.errors = list(errors)


def error_response(status: int, errors: Iterable[tuple[str | None, str]],
                   headers: dict[str, str] | None = None) -> Response:
    body = ErrorBody(errors=[ErrorItem(field=f, message=m) for f, m in errors])
    response = Response(body.model_dump_json(), status=status, mimetype="application/json", headers=headers)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="diversion API"'
    return response


def http_error(error: Exception, code: int) -> Response:
    """An error of the app (routing, an abort, a crash) under /api/, as JSON with no internals."""
    if isinstance(error, AddressRefused):  # a bad parameter, as the API answers any
        return error_response(422, [(error.parameter, str(error.description))])
    if isinstance(error, AccessRefused):  # the token's system may not do this
        return error_response(403, [(None, error.message)])
    headers = {}
    if isinstance(error, HTTPException):  # keep Allow on a 405
        headers = {name: value for name, value in error.get_headers() if name.lower() == "allow"}
    message = HTTP_MESSAGES.get(code) or (f"Something went wrong on our side. {outage.changes_note()}"
                                          if code >= 500 else "The request could not be handled.")
    if code == 404 and request.path.startswith(f"{PREFIX}/provider/"):
        message = "There is no such item for this provider."
    return error_response(code, [(None, message)], headers)


def unavailable() -> Response:
    """503 when the database cannot answer: try again after ``Retry-After`` seconds."""
    return error_response(503, [(None, outage.unavailable_message())], {"Retry-After": outage.retry_after()})


def api_blueprint(name: str, import_name: str, url_prefix: str = "") -> Blueprint:
    """A blueprint of JSON operations: opened by a bearer token only (no cookie, so no
    forged request to guard against: CSRF does not apply), bodies bounded, problems as JSON."""
    blueprint = Blueprint(name, import_name, url_prefix=f"{PREFIX}{url_prefix}")
    csrf.exempt(blueprint)

    @blueprint.before_request
    def _bounded() -> None:
        request.max_content_length = MAX_BODY_BYTES

    @blueprint.errorhandler(ApiProblem)
    def _problem(error: ApiProblem) -> Response:
        outage.safe_rollback()
        return error_response(error.status, error.errors)

    return blueprint


def answer(model: BaseModel, status: int = 200, location: str | None = None) -> Response:
    response = Response(model.model_dump_json(by_alias=True), status=status, mimetype="application/json")
    if location is not None:
        response.headers["Location"] = location
    return response


def _field(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "body"


def validation_problem(error: ValidationError, explain: Explain | None = None) -> ApiProblem:
    """422 with every field at fault, in plain words where there are some."""
    def message(location: tuple[int | str, ...], kind: str, default: str) -> str:
        if not location:  # not JSON, or not an object
            return "The body must be a JSON object."
        return (explain(location, kind) if explain else None) or MESSAGES.get(kind, default)

    return ApiProblem(422, [
        (_field(tuple(item["loc"])), message(tuple(item["loc"]), item["type"], item["msg"]))
        for item in error.errors(include_url=False, include_input=False)
    ])


def body(model: type[M], explain: Explain | None = None) -> M:
    """The request's JSON body as ``model``; refuses (422) anything else."""
    try:
        return model.model_validate_json(request.get_data(cache=False) or b"")
    except ValidationError as error:
        raise validation_problem(error, explain) from None


def query(model: type[M]) -> M:
    """The query string as ``model``; refuses (422) a parameter given twice, and bad values."""
    repeated = [name for name, values in request.args.lists() if len(values) > 1]
    if repeated:
        raise ApiProblem(422, [(name, "Give this parameter once.") for name in repeated])
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise validation_problem(error) from None


def take_key(model: type[idempotency.KeptAnswer], owner: dict[str, Any]) -> idempotency.Taken | Response | None:
    """Take the request's ``Idempotency-Key``, if it has one, before its effect.

    None without a key; the key, held until the request's unit of work
    ends; or the answer the same request got before, to send again as it
    is (the kept row's lock is let go when the unit ends). 422 for a
    malformed key or one used with another request.
    """
    try:
        key = idempotency.checked_key(request.headers.getlist(idempotency.HEADER))
        if key is None:
            return None
        found = idempotency.take(model, owner, key,
                                 idempotency.fingerprint(request.method, request.path, request.get_data()),
                                 now=utcnow())
    except idempotency.IdempotencyError as error:
        raise ApiProblem(422, [(error.field, error.message)]) from None
    if isinstance(found, idempotency.Answer):
        response = Response(found.body, status=found.status, mimetype="application/json")
        if found.location is not None:
            response.headers["Location"] = found.location
        response.headers[idempotency.REPLAYED_HEADER] = "true"
        return response
    return found


def idempotent(model: type[idempotency.KeptAnswer], owner: Callable[[], dict[str, Any]],
               ) -> Callable[[Callable[P, Response]], Callable[P, Response]]:
    """A change that takes an ``Idempotency-Key`` before its effect (``take_key``, the key's
    row owned by ``owner()``): the same request sent again gets the answer it got before,
    and the view's answer is kept under the key (``keep_answer``)."""

    def decorate(view: Callable[P, Response]) -> Callable[P, Response]:
        @wraps(view)
        def taking_the_key(*args: P.args, **kwargs: P.kwargs) -> Response:
            taken = take_key(model, owner())
            if isinstance(taken, Response):
                return taken
            return keep_answer(view(*args, **kwargs), taken)

        return taking_the_key

    return decorate


def keep_answer(response: Response, taken: idempotency.Taken | None) -> Response:
    """The answer of a change, kept under the request's key if it has one: in the request's unit of
    work, so that the change and its kept answer commit together, once, at the end of the request."""
    if taken is not None:
        idempotency.remember(taken, idempotency.Answer(response.status_code, response.get_data(as_text=True),
                                                       response.headers.get("Location")))
    return response
