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
    """A request whose query string is refused: ``parameter`` names the value
    at fault and the description says what was wrong, in plain words, to be
    shown as it is (a page's 400, the API's 422 on that parameter)."""

    def __init__(self, parameter: str, description: str) -> None:
        super().__init__(description)
        self.parameter = parameter
