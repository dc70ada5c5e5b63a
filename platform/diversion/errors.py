"""The one shape of a refused change, shared by every feature's services."""

from __future__ import annotations


class FieldError(ValueError):
    """A refused change; ``field`` names the input at fault, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
