"""What every page shares: the checks on its address, what every answer
carries, and what a page that changes something does after calling its service
(it never commits: the end of the request does, ``unit``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import abort, flash, request
from flask_babel import gettext as _
from werkzeug.routing import IntegerConverter, Map
from werkzeug.wrappers import Response
from wtforms import Field

from diversion.errors import AddressRefused, FieldError
from diversion.forms import Form
from diversion.inputs import ID_MAX, printable, text_problem
from diversion.unit import refuse

T = TypeVar("T")


class IdConverter(IntegerConverter):
    """``<int:...>`` in an address: a whole number that fits the integer columns ids live in.

    A larger one does not match the route, so it is not found (404) like any
    other unknown id, instead of reaching the database and failing there.
    """

    def __init__(self, url_map: Map, fixed_digits: int = 0, min: int | None = None,  # noqa: A002 - werkzeug's names
                 max: int | None = ID_MAX, signed: bool = False) -> None:  # noqa: A002
        ceiling = ID_MAX if max is None or max > ID_MAX else max
        super().__init__(url_map, fixed_digits, min, ceiling, signed)


def refuse_control_characters_in_url(_endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """Before anything reads the address: a path with a control character is
    not found (404); a query parameter with one is refused (400), named."""
    if text_problem(request.path) is not None:
        abort(404)
    for name, value in request.args.items(multi=True):
        if text_problem(name) is not None or text_problem(value) is not None:
            shown = printable(name.strip())[:40] or "?"
            raise AddressRefused(shown, _("The address's “%(name)s” value cannot contain control characters.",
                                          name=shown))


def change_or_flash(change: Callable[[], object], done: str) -> bool:
    """Run ``change`` as the request's unit of work and flash ``done`` (committed
    at the end of the request, ``unit``), or, when the service refuses, give the
    unit up and flash its reason. True if done."""
    try:
        change()
    except FieldError as error:
        refuse()
        flash(error.message, "error")
        return False
    flash(done, "success")
    return True


def change_on_form(form: Form, change: Callable[[], T], fields: Mapping[str, Field] | None = None) -> T | None:
    """Run ``change`` as the request's unit of work and return what it answers, or,
    when the service refuses, give the unit up, put the reason on the form
    (``show_refusal``) and return None (so ``change`` must answer something)."""
    try:
        return change()
    except FieldError as error:
        show_refusal(form, error, fields)
        return None


def show_refusal(form: Form, error: FieldError, fields: Mapping[str, Field] | None = None) -> None:
    """Give the request's unit of work up after a service refused it, and put the
    reason on the form: on the field the service names (through ``fields``
    where the form calls it otherwise), else on the form as a whole."""
    refuse()
    field = (fields or {}).get(error.field) or getattr(form, error.field, None)
    if isinstance(field, Field):
        field.errors = [error.message]
    else:
        form.form_errors.append(error.message)


def forbid_storing(response: Response) -> Response:
    """Mark every answer but a static asset ``Cache-Control: no-store``.

    Pages and API answers carry people's names and contact details, members'
    email addresses, one-time secrets and CSRF tokens; none may be kept by a
    browser (to reappear under Back on a shared computer) or by a proxy. The
    rule is deliberately blunt: sorting answers into personal and not would
    miss one sooner or later, and the few public pages (start, sign-in,
    health) lose nothing by being fetched again. It overrides whatever a view
    set (``send_file`` would allow storing). Static assets carry no data and
    stay cacheable.
    """
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response
