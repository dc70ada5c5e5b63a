"""What every page that changes something does after calling its service."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash

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
