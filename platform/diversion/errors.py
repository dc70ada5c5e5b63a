"""The shapes of a refusal shared by every feature: a refused change, a refused address, a refused action."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from werkzeug.exceptions import BadRequest, Forbidden

Problem = TypeVar("Problem")


class FieldError(ValueError):
    """A refused change; ``field`` names the input at fault, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ProblemsFound(ValueError, Generic[Problem]):  # noqa: N818 - reads as the condition it reports
    """A whole (a file, a policy) refused: ``problems`` lists every problem found
    in it, each naming its place; nothing of it is applied."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(self.summary(problems))
        self.problems = problems

    @staticmethod
    def summary(problems: list[Any]) -> str:
        """The message: every problem, one a line."""
        return "\n".join(str(problem) for problem in problems)


class AddressRefused(BadRequest):
    """A request whose query string is refused: ``parameter`` names the value
    at fault and the description says what was wrong, in plain words, to be
    shown as it is (a page's 400, the API's 422 on that parameter)."""

    def __init__(self, parameter: str, description: str) -> None:
        super().__init__(description)
        self.parameter = parameter


class AccessRefused(Forbidden):
    """An action the actor's roles do not allow (``accounts.access``): ``field`` names
    the action and ``message`` says so in plain words. A page answers 403 with the
    message, the API a 403 problem; nothing has been written."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
