"""What the web pages of every feature ask of accounts: a platform role."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user, login_required

from diversion.accounts.models import Role

F = TypeVar("F", bound=Callable[..., Any])


def requires_platform_role(role: Role) -> Callable[[F], F]:
    """Refuse (403) a signed-in user without ``role``; sign-in first for others."""

    def decorate(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if role not in current_user.platform_roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
