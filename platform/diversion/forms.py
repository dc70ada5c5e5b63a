"""The base of every form, and the date field every form uses.

Every form of the platform derives from ``Form``, which refuses control
characters in every field it is sent (``diversion.inputs``): on the field
itself, in the GOV.UK error summary, before any service sees the value.
A test walks every form class to keep it that way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any

from flask_babel import gettext
from flask_babel.speaklater import LazyString
from flask_wtf import FlaskForm
from govuk_frontend_wtf.main import wtforms_errors as govuk_wtforms_errors
from govuk_frontend_wtf.wtforms_widgets import GovDateInput, GovPasswordInput
from markupsafe import escape
from wtforms import DateField, Field, TextAreaField
from wtforms.utils import unset_value
from wtforms.validators import Length, ValidationError

from diversion.inputs import LINE_BREAK_MESSAGE, text_problem

DATE_PARTS = 3  # day, month, year


class LazyText(LazyString):
    """A message translated when a page reads it, written by the page as text: escaped.
    Flask-Babel's own lazy string hands itself to Jinja as markup, so a label such as
    "Enter the person's name" would be written unescaped."""

    def __html__(self) -> str:
        return str(escape(str(self)))


def lazy_gettext(string: str, **variables: Any) -> LazyText:
    """Flask-Babel's ``lazy_gettext``, escaped where a page writes it (``LazyText``): what
    every form's labels, hints and messages are marked with (as ``_l``)."""
    return LazyText(gettext, string, **variables)


_l = lazy_gettext


def label_of(thing: Any) -> LazyText:
    """``thing.label``, read when a page writes it (in the reader's language), not when a form
    class is made: the label of a choice made at import."""
    return LazyText(attrgetter("label"), thing)


def _subject(field: Field) -> str:
    """How a message names the field: its label, unless the label is a question."""
    label = str(field.label.text)
    return gettext("The answer") if label.rstrip().endswith("?") else re.sub(r"\s*\([^)]*\)$", "", label)


def _text_problem(field: Field) -> str | None:
    for raw in getattr(field, "raw_data", None) or ():
        if isinstance(raw, str) and (problem := text_problem(raw, multiline=isinstance(field, TextAreaField))):
            if problem == LINE_BREAK_MESSAGE:
                return str(gettext("%(field)s must be on one line, without tabs or control characters",
                               field=_subject(field)))
            return str(gettext("%(field)s cannot contain control characters (such as a NUL byte)",
                               field=_subject(field)))
    return None


class Form(FlaskForm):
    """A form whose fields refuse control characters (line breaks and tabs
    too, except in a text area). That refusal is the field's one error: it
    says more than whatever else the value fails. Its errors are plain text
    once validated: a message translated lazily (``_l``) would otherwise reach
    the page as markup, unescaped."""

    def validate(self, extra_validators: Mapping[str, Sequence[Any]] | None = None) -> bool:
        valid = bool(super().validate(extra_validators))
        for field in self:
            if problem := _text_problem(field):
                field.errors = [problem]
                valid = False
            elif isinstance(field.errors, list):
                field.errors = [str(error) for error in field.errors]
        return valid


class Longest(Length):
    """At most ``limit`` characters, refused in the service's words: "Phone must
    be 40 characters or fewer" (never the library's "Field cannot be longer...")."""

    def __init__(self, limit: int, message: str | None = None) -> None:
        super().__init__(max=limit, message=message)

    def __call__(self, form: FlaskForm, field: Field) -> None:
        if len(field.data or "") > self.max:
            raise ValidationError(self.message or gettext("%(field)s must be %(count)s characters or fewer",
                                                          field=_subject(field), count=f"{self.max:,}"))


class PasswordInput(GovPasswordInput):
    """GOV.UK's password input, its Show and Hide (and what a screen reader hears of them) in
    the reader's language."""

    def map_gov_params(self, field: Field, **kwargs: Any) -> dict[str, Any]:
        params: dict[str, Any] = super().map_gov_params(field, **kwargs)
        said = {"showPasswordText": gettext("Show"), "hidePasswordText": gettext("Hide"),
                "showPasswordAriaLabelText": gettext("Show password"),
                "hidePasswordAriaLabelText": gettext("Hide password"),
                "passwordShownAnnouncementText": gettext("Your password is visible"),
                "passwordHiddenAnnouncementText": gettext("Your password is hidden")}
        return {**said, **params}


class DateInput(GovDateInput):
    """GOV.UK's day, month and year inputs, their labels in the reader's language."""

    def map_gov_params(self, field: Field, **kwargs: Any) -> dict[str, Any]:
        params: dict[str, Any] = super().map_gov_params(field, **kwargs)
        for item, label in zip(params["items"], (gettext("Day"), gettext("Month"), gettext("Year")), strict=True):
            item["label"] = label
        return params


# What a date left part-empty lacks, said whole, as Welsh needs it.
_LACKING = {
    ("day",): _l("%(date)s must include a day"),
    ("month",): _l("%(date)s must include a month"),
    ("year",): _l("%(date)s must include a year"),
    ("day", "month"): _l("%(date)s must include a day and a month"),
    ("day", "year"): _l("%(date)s must include a day and a year"),
    ("month", "year"): _l("%(date)s must include a month and a year"),
}


class GovDateField(DateField):
    """A GOV.UK day/month/year date.

    ``called`` is how messages call the date ("the date of birth"); by default
    the label. A date that is not a real one is refused as "The date of birth
    must be a real date", a date with a part left empty as "... must include a
    month", never with the library's words. The widget needs exactly three
    parts; a request that sends another number of values (one
    ``date_of_birth=1``, or none) gets the field's error instead of a broken
    page. All three left empty is no date: the field's own validators say
    whether one is needed.
    """

    widget = DateInput()

    def __init__(self, label: str | None = None, validators: Any = None, *, called: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(label, validators, **kwargs)
        self.date_name = called

    def _named(self) -> str:
        if self.date_name:
            name = str(self.date_name)
            return name[:1].upper() + name[1:]
        return _subject(self)

    def process_formdata(self, valuelist: list[Any]) -> None:
        parts = [str(part).strip() for part in valuelist]
        if not any(parts):
            self.data = None
            return
        empty = tuple(name for name, part in zip(("day", "month", "year"), parts, strict=False) if not part)
        if empty:
            self.data = None
            raise ValueError(str(_LACKING[empty]) % {"date": self._named()})
        try:
            super().process_formdata(parts)
        except ValueError:
            self.data = None
            raise ValueError(gettext("%(date)s must be a real date", date=self._named())) from None

    def process(self, formdata: Any, data: Any = unset_value, extra_filters: Any = None) -> None:
        super().process(formdata, data, extra_filters)
        raw: list[str] | None = getattr(self, "raw_data", None)
        if not raw:
            self.raw_data = None
        elif len(raw) != DATE_PARTS:
            self.raw_data = [*raw[:DATE_PARTS], *[""] * (DATE_PARTS - len(raw))]
            self.data = None
            self.process_errors = [gettext("%(date)s must include a day, a month and a year", date=self._named())]


def error_summary(form: FlaskForm, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The GOV.UK error summary's parameters for ``form`` (every field's first
    error), each linking to what it is about: a date to its day input (which
    holds ``<name>-day``; nothing holds the field's own id), an error of the
    whole form to nothing."""
    summary: dict[str, Any] = govuk_wtforms_errors(form, {"titleText": gettext("There is a problem"), **(params or {})})
    dates = {f"#{field.id}": f"#{field.name}-day" for field in form if isinstance(field, DateField)}
    for item in summary["errorList"]:
        href = item.get("href")
        if href == "#None":
            del item["href"]
        elif href in dates:
            item["href"] = dates[href]
    return summary
