"""The shapes of a refusal shared by every feature: a refused change, a refused address."""

from __future__ import annotations

from werkzeug.exceptions import BadRequest


class FieldError(ValueError):
    """A refused change; ``field`` names the input at fault, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class AddressRefused(BadRequest):
    """A request whose address (path or query) is refused; the description
    says what was wrong, in plain words, and is shown as it is."""
