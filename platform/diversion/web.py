"""What every page that changes something does after calling its service, and
what every answer carries."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import flash, request
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import Field

from diversion.errors import FieldError
from diversion.extensions import db


def commit_or_flash(change: Callable[[], object], done: str) -> bool:
    """Run ``change`` as the request's unit of work: commit and flash ``done``,
    or, when the service refuses, roll back and flash its reason. True if done."""
    try:
        change()
    except FieldError as error:
        db.session.rollback()
        flash(error.message, "error")
        return False
    db.session.commit()
    flash(done, "success")
    return True


def show_refusal(form: FlaskForm, error: FieldError, fields: Mapping[str, Field] | None = None) -> None:
    """Undo the request's unit of work after a service refused it, and put the
    reason on the form: on the field the service names (through ``fields``
    where the form calls it otherwise), else on the form as a whole."""
    db.session.rollback()
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
