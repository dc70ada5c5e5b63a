"""The intake form, built from the national field catalogue, and the case-work forms
(overrides, referrals, moves, booking a session and recording attendance: the force's
pages and the provider's use the same)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxesInput,
    GovCheckboxInput,
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import (
    BooleanField,
    Field,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, Regexp

from diversion.cases.rules import DERIVED_FACTS, LIMITS
from diversion.db import LONDON
from diversion.eligibility.fields import FIELDS, Kind
from diversion.forms import Form, GovDateField
from diversion.monitoring import ETHNICITIES

UNKNOWN = "unknown"  # the officer does not know this yet: the decision may need review


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _choice_label(value: str) -> str:
    return value.replace("_", " ").capitalize() if value not in ("A", "B", "C") else f"Class {value}"


def _fact_field(name: str) -> Field:
    spec = FIELDS[name]
    if spec.kind is Kind.INT:
        return StringField(_label(name), widget=GovTextInput(), description=spec.meaning,
                           validators=[Optional(), Regexp(r"^\d{1,3}$", message=f"{_label(name)} must be a number")])
    if spec.kind is Kind.BOOL:
        return RadioField(_label(name), widget=GovRadioInput(), description=spec.meaning, default=UNKNOWN,
                          choices=[SelectChoice("yes", "Yes"), SelectChoice("no", "No"),
                                   SelectChoice(UNKNOWN, "Not known yet")])
    if spec.kind is Kind.CHOICE:
        return RadioField(_label(name), widget=GovRadioInput(), description=spec.meaning, default=UNKNOWN,
                          choices=[*(SelectChoice(v, _choice_label(v)) for v in spec.values),
                                   SelectChoice(UNKNOWN, "Not known yet")])
    return SelectMultipleField(_label(name), widget=GovCheckboxesInput(), description=spec.meaning,
                               choices=[SelectChoice(v, _choice_label(v)) for v in spec.values],
                               validators=[Optional()])


ASKED_FACTS = tuple(name for name in FIELDS if name not in DERIVED_FACTS)


class _IntakeBase(Form):
    surname = StringField("Surname", widget=GovTextInput(),
                          validators=[InputRequired(message="Enter the person's surname"),
                                      Length(max=LIMITS["surname"])])
    given_name = StringField("Given name", widget=GovTextInput(),
                             validators=[InputRequired(message="Enter the person's given name"),
                                         Length(max=LIMITS["given_name"])])
    date_of_birth = GovDateField("Date of birth", format="%d %m %Y", description="For example, 27 3 2001",
                                 validators=[InputRequired(message="Enter the date of birth as day, month and year")])
    pnc_id = StringField("PNC ID (if known)", widget=GovTextInput(),
                         validators=[Optional(), Length(max=LIMITS["pnc_id"])])
    ethnicity = SelectField("Self-defined ethnicity", widget=GovSelect(),
                            choices=[SelectChoice(code, f"{code} – {label}") for code, label in ETHNICITIES.items()],
                            default="NS")
    phone = StringField("Phone", widget=GovTextInput(), validators=[Optional(), Length(max=LIMITS["phone"])])
    email = StringField("Email", widget=GovTextInput(), validators=[Optional(), Length(max=LIMITS["email"])])
    address = TextAreaField("Address", widget=GovTextArea(), validators=[Optional(), Length(max=LIMITS["address"])])
    offence_on = GovDateField("Date of the offence", format="%d %m %Y",
                              validators=[InputRequired(message="Enter the offence date as day, month and year")])
    submit = SubmitField("Record and decide", widget=GovSubmitInput())

    def facts(self) -> dict[str, Any]:
        """The facts as the decision reads them; ``Not known yet`` leaves a fact out."""
        found: dict[str, Any] = {}
        for name in ASKED_FACTS:
            value = getattr(self, name).data
            kind = FIELDS[name].kind
            if kind is Kind.INT and value not in (None, ""):
                found[name] = int(value)
            elif kind is Kind.BOOL and value in ("yes", "no"):
                found[name] = value == "yes"
            elif kind is Kind.CHOICE and value and value != UNKNOWN:
                found[name] = value
            elif kind is Kind.CHOICES:
                found[name] = list(value or [])
        return found


IntakeForm: type[_IntakeBase] = type("IntakeForm", (_IntakeBase,), {name: _fact_field(name) for name in ASKED_FACTS})


class OverrideForm(Form):
    outcome = RadioField("The decision that stands", widget=GovRadioInput(),
                         choices=[SelectChoice("eligible", "Eligible"), SelectChoice("not_eligible", "Not eligible")],
                         validators=[InputRequired(message="Choose the decision that stands")])
    pathway = SelectField("Pathway (when eligible)", widget=GovSelect(), validators=[Optional()])
    reason = TextAreaField("Reason", widget=GovTextArea(),
                           validators=[InputRequired(message="Give the reason for the override"),
                                       Length(max=LIMITS["reason"])])
    submit = SubmitField("Override", widget=GovSubmitInput())


class ReferForm(Form):
    offering = RadioField("Course", widget=GovRadioInput(), validators=[InputRequired(message="Choose a course")])
    submit = SubmitField("Offer a place", widget=GovSubmitInput())


class TransitionForm(Form):
    to = RadioField("What happened", widget=GovRadioInput(), validators=[InputRequired(message="Choose what happened")])
    reason = TextAreaField("Reason or note", widget=GovTextArea(),
                           validators=[Optional(), Length(max=LIMITS["reason"])])
    submit = SubmitField("Record", widget=GovSubmitInput())


class BookForm(Form):
    day = GovDateField("Date of the session", format="%d %m %Y", description="For example, 27 3 2027",
                       validators=[InputRequired(message="Enter the date of the session as day, month and year")])
    time = StringField("Start time", widget=GovTextInput(), description="24-hour clock, UK time, for example 14:30",
                       validators=[InputRequired(message="Enter the start time"),
                                   Regexp(r"^([01]?\d|2[0-3]):[0-5]\d$",
                                          message="Enter the start time as hours and minutes, like 14:30")])
    venue = StringField("Venue", widget=GovTextInput(), description="Where the person should go",
                        validators=[InputRequired(message="Enter where the session takes place"),
                                    Length(max=LIMITS["venue"])])
    submit = SubmitField("Book the session", widget=GovSubmitInput())

    def starts_at(self) -> datetime | None:
        """When the session starts, in UTC, from the UK date and time given (None until both are valid)."""
        if self.day.data is None or not self.time.data or self.time.errors:
            return None
        hours, minutes = (int(part) for part in self.time.data.split(":"))
        return datetime.combine(self.day.data, time(hours, minutes), tzinfo=LONDON).astimezone(UTC)


class AttendanceForm(Form):
    attendance = RadioField("Did the person attend?", widget=GovRadioInput(),
                            choices=[SelectChoice("attended", "Attended"),
                                     SelectChoice("did_not_attend", "Did not attend: the referral ends as not "
                                                                    "completed and the force's non-completion "
                                                                    "action follows")],
                            validators=[InputRequired(message="Choose whether the person attended")])
    note = TextAreaField("Note (optional)", widget=GovTextArea(), validators=[Optional(), Length(max=500)])
    confirm = BooleanField("I confirm this is what happened", widget=GovCheckboxInput(),
                           validators=[InputRequired(message="Confirm what happened")])
    submit = SubmitField("Record attendance", widget=GovSubmitInput())


# ---------------------------------------------------------------- the facts a decision waits for

NONE_OF_THESE = "none"  # a list fact known to be empty (no aggravating factor, say)


class FactsForm(Form):
    """The facts a decision waits for, given at review (``cases.services.decide_again``):
    one field per fact, as on the intake form, "Not known yet" still an answer."""

    names: tuple[str, ...] = ()
    submit = SubmitField("Decide again", widget=GovSubmitInput())

    def facts(self) -> dict[str, Any]:
        """The facts given, by name; one left "Not known yet" is None (still unknown)."""
        found: dict[str, Any] = {}
        for name in self.names:
            value = getattr(self, name).data
            kind = FIELDS[name].kind
            found[name] = None
            if kind is Kind.INT and value not in (None, ""):
                found[name] = int(value)
            elif kind is Kind.BOOL and value in ("yes", "no"):
                found[name] = value == "yes"
            elif kind is Kind.CHOICE and value and value != UNKNOWN:
                found[name] = value
            elif kind is Kind.CHOICES and value and UNKNOWN not in value:
                found[name] = [] if NONE_OF_THESE in value else list(value)
        return found

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        for name in self.names:
            field = getattr(self, name)
            chosen = field.data or []
            if FIELDS[name].kind is Kind.CHOICES and len({NONE_OF_THESE, UNKNOWN} & set(chosen)) \
                    and len(chosen) > 1:
                field.errors.append(f"Choose the {_label(name).lower()}, or none of these, or not known yet: "
                                    "only one of the three")
                valid = False
        if valid and all(value is None for value in self.facts().values()):
            first = getattr(self, self.names[0])
            first.errors.append("Give at least one of the facts the decision waits for")
            valid = False
        return valid


def _list_fact(name: str) -> Field:
    spec = FIELDS[name]
    return SelectMultipleField(_label(name), widget=GovCheckboxesInput(), description=spec.meaning,
                               choices=[*(SelectChoice(v, _choice_label(v)) for v in spec.values),
                                        SelectChoice(NONE_OF_THESE, "None of these"),
                                        SelectChoice(UNKNOWN, "Not known yet")],
                               validators=[Optional()])


def facts_form(names: list[str]) -> type[FactsForm]:
    """A form asking for ``names`` (facts of the catalogue an officer gives)."""
    fields: dict[str, Any] = {name: _list_fact(name) if FIELDS[name].kind is Kind.CHOICES else _fact_field(name)
                              for name in names}
    return type("AskedFactsForm", (FactsForm,), {**fields, "names": tuple(names)})
