"""The intake form, built from the national field catalogue, and the case-work forms
(overrides, referrals, moves, booking a session and recording attendance: the force's
pages and the provider's use the same)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from flask_babel import gettext as _
from flask_babel.speaklater import LazyString
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
from wtforms.validators import InputRequired, Optional, Regexp, ValidationError

from diversion.cases.models import Referral, State
from diversion.cases.rules import DERIVED_FACTS, LIMITS, outcome_named
from diversion.db import LONDON
from diversion.eligibility.fields import FIELDS, Kind
from diversion.eligibility.fields import Field as CatalogueField
from diversion.forms import Form, GovDateField, Longest
from diversion.forms import lazy_gettext as _l
from diversion.monitoring import ETHNICITIES
from diversion.tenancy.models import Tenant
from diversion.words import ENGLISH, WELSH, current_language

UNKNOWN = "unknown"  # the officer does not know this yet: the decision may need review
NONE = "none"  # a list fact that is known to be empty (no aggravating factors)


class GovCheckboxesOrNone(GovCheckboxesInput):
    """GOV.UK checkboxes whose last two options, "None" and "Not known yet",
    stand apart after an "or" and each clear the others when ticked (the
    "exclusive" behaviour; without JavaScript the form refuses a mix)."""

    def map_gov_params(self, field: Field, **kwargs: Any) -> dict[str, Any]:
        params: dict[str, Any] = super().map_gov_params(field, **kwargs)
        items = params["items"]
        for item in items[-2:]:
            item["behaviour"] = "exclusive"
        params["items"] = [*items[:-2], {"divider": _("or")}, *items[-2:]]
        return params


def _one_kind_of_answer(form: Form, field: Field) -> None:
    chosen = set(field.data or [])
    if len(chosen) > 1 and chosen & {NONE, UNKNOWN}:
        label = str(field.label.text).lower()
        if NONE in chosen:
            raise ValidationError(_("Select None on its own, or the %(field)s", field=label))
        raise ValidationError(_("Select Not known yet on its own, or the %(field)s", field=label))


def _hint(spec: CatalogueField) -> LazyString | str:
    """The field's meaning as the form's hint (translated when read), unless it only repeats the label."""
    return "" if spec.meaning.rstrip(".").casefold() == spec.label.casefold() else spec.explanation


def _fact_field(name: str) -> Field:
    spec = FIELDS[name]
    if spec.kind is Kind.INT:
        return StringField(spec.title, widget=GovTextInput(), description=_hint(spec),
                           validators=[Optional(), Regexp(r"^\d{1,3}$",
                                                          message=_l("%(field)s must be a number", field=spec.title))])
    if spec.kind is Kind.BOOL:
        return RadioField(spec.title, widget=GovRadioInput(), description=_hint(spec), default=UNKNOWN,
                          choices=[SelectChoice("yes", _l("Yes")), SelectChoice("no", _l("No")),
                                   SelectChoice(UNKNOWN, _l("Not known yet"))])
    if spec.kind is Kind.CHOICE:
        return RadioField(spec.title, widget=GovRadioInput(), description=_hint(spec), default=UNKNOWN,
                          choices=[*(SelectChoice(v, spec.value_title(v)) for v in spec.values),
                                   SelectChoice(UNKNOWN, _l("Not known yet"))])
    return SelectMultipleField(spec.title, widget=GovCheckboxesOrNone(), description=_l("Select all that apply."),
                               default=[UNKNOWN],
                               choices=[*(SelectChoice(v, spec.value_title(v)) for v in spec.values),
                                        SelectChoice(NONE, _l("None")), SelectChoice(UNKNOWN, _l("Not known yet"))],
                               validators=[Optional(), _one_kind_of_answer])


ASKED_FACTS = tuple(name for name in FIELDS if name not in DERIVED_FACTS)


def read_fact(name: str, value: Any) -> Any:
    """A fact field's answer as the decision reads it: None when not known yet
    (for a list, nothing ticked too); a list's ``None`` is the empty list."""
    kind = FIELDS[name].kind
    if kind is Kind.INT:
        return int(value) if value not in (None, "") else None
    if kind is Kind.BOOL:
        return value == "yes" if value in ("yes", "no") else None
    if kind is Kind.CHOICE:
        return value if value and value != UNKNOWN else None
    if not value or UNKNOWN in value:
        return None
    return [] if NONE in value else list(value)


class _IntakeBase(Form):
    surname = StringField(_l("Surname"), widget=GovTextInput(),
                          validators=[InputRequired(message=_l("Enter the person's surname")),
                                      Longest(LIMITS["surname"])])
    given_name = StringField(_l("Given name"), widget=GovTextInput(),
                             validators=[InputRequired(message=_l("Enter the person's given name")),
                                         Longest(LIMITS["given_name"])])
    date_of_birth = GovDateField(_l("Date of birth"), format="%d %m %Y", description=_l("For example, 27 3 2001"),
                                 validators=[InputRequired(
                                     message=_l("Enter the date of birth as day, month and year"))])
    pnc_id = StringField(_l("PNC ID (if known)"), widget=GovTextInput(),
                         validators=[Optional(), Longest(LIMITS["pnc_id"])])
    ethnicity = SelectField(_l("Self-defined ethnicity"), widget=GovSelect(),
                            choices=[SelectChoice(code, _l("%(code)s – %(ethnicity)s", code=code, ethnicity=label))
                                     for code, label in ETHNICITIES.items()],
                            default="NS")
    phone = StringField(_l("Phone"), widget=GovTextInput(), validators=[Optional(), Longest(LIMITS["phone"])])
    email = StringField(_l("Email"), widget=GovTextInput(), validators=[Optional(), Longest(LIMITS["email"])])
    address = TextAreaField(_l("Address"), widget=GovTextArea(), validators=[Optional(), Longest(LIMITS["address"])])
    # Asked by a force that works in Welsh (the intake page removes it elsewhere): the provider reads it too.
    language = RadioField(_l("Which language does the person prefer to be spoken to in?"), widget=GovRadioInput(),
                          choices=[SelectChoice(ENGLISH, _l("English")), SelectChoice(WELSH, _l("Welsh"))],
                          validators=[InputRequired(message=_l("Select the language the person prefers"))])
    offence_on = GovDateField(_l("Date of the offence"), format="%d %m %Y", called="the offence date",
                              validators=[InputRequired(message=_l("Enter the offence date as day, month and year"))])
    submit = SubmitField(_l("Record and decide"), widget=GovSubmitInput())

    def facts(self) -> dict[str, Any]:
        """The facts as the decision reads them; ``Not known yet`` (or, for a
        list, nothing ticked) leaves a fact out; a list's ``None`` is empty."""
        answers = {name: read_fact(name, getattr(self, name).data) for name in ASKED_FACTS}
        return {name: value for name, value in answers.items() if value is not None}


IntakeBase = _IntakeBase  # the intake form's type, for annotations
IntakeForm: type[_IntakeBase] = type("IntakeForm", (_IntakeBase,), {name: _fact_field(name) for name in ASKED_FACTS})


class OverrideForm(Form):
    outcome = RadioField(_l("The decision that stands"), widget=GovRadioInput(),
                         choices=[SelectChoice("eligible", _l("Eligible")),
                                  SelectChoice("not_eligible", _l("Not eligible"))],
                         validators=[InputRequired(message=_l("Choose the decision that stands"))])
    pathway = SelectField(_l("Pathway (when eligible)"), widget=GovSelect(), validators=[Optional()])
    reason = TextAreaField(_l("Reason"), widget=GovTextArea(),
                           validators=[InputRequired(message=_l("Give the reason for the override")),
                                       Longest(LIMITS["reason"])])
    submit = SubmitField(_l("Override"), widget=GovSubmitInput())


class ReferForm(Form):
    offering = RadioField(_l("Course"), widget=GovRadioInput(),
                          validators=[InputRequired(message=_l("Choose a course"))])
    submit = SubmitField(_l("Offer a place"), widget=GovSubmitInput())


class TransitionForm(Form):
    to = RadioField(_l("What happened"), widget=GovRadioInput(),
                    validators=[InputRequired(message=_l("Choose what happened"))])
    reason = TextAreaField(_l("Reason or note"), widget=GovTextArea(),
                           validators=[Optional(), Longest(LIMITS["reason"])])
    submit = SubmitField(_l("Record"), widget=GovSubmitInput())


class BookForm(Form):
    day = GovDateField(_l("Date of the session"), format="%d %m %Y", called="the session date",
                       description=_l("For example, 27 3 2027"),
                       validators=[InputRequired(
                           message=_l("Enter the date of the session as day, month and year"))])
    time = StringField(_l("Start time"), widget=GovTextInput(),
                       description=_l("24-hour clock, UK time, for example 14:30"),
                       validators=[InputRequired(message=_l("Enter the start time")),
                                   Regexp(r"^([01]?\d|2[0-3]):[0-5]\d$",
                                          message=_l("Enter the start time as hours and minutes, like 14:30"))])
    venue = StringField(_l("Venue"), widget=GovTextInput(), description=_l("Where the person should go"),
                        validators=[InputRequired(message=_l("Enter where the session takes place")),
                                    Longest(LIMITS["venue"])])
    submit = SubmitField(_l("Book the session"), widget=GovSubmitInput())

    def starts_at(self) -> datetime | None:
        """When the session starts, in UTC, from the UK date and time given (None until both are valid)."""
        if self.day.data is None or not self.time.data or self.time.errors:
            return None
        hours, minutes = (int(part) for part in self.time.data.split(":"))
        return datetime.combine(self.day.data, time(hours, minutes), tzinfo=LONDON).astimezone(UTC)


class AttendanceForm(Form):
    attendance = RadioField(_l("Did the person attend?"), widget=GovRadioInput(),
                            choices=[SelectChoice("attended", _l("Attended")),
                                     SelectChoice("did_not_attend", _l("Did not attend"))],
                            validators=[InputRequired(message=_l("Choose whether the person attended"))])
    note = TextAreaField(_l("Note (optional)"), widget=GovTextArea(), validators=[Optional(), Longest(500)])
    confirm = BooleanField(_l("I confirm this is what happened"), widget=GovCheckboxInput(),
                           validators=[InputRequired(message=_l("Confirm what happened"))])
    submit = SubmitField(_l("Record attendance"), widget=GovSubmitInput())


def attendance_message(referral: Referral, tenant: Tenant, attended: bool) -> str:
    """What a page says once attendance is recorded, from where the referral went (the outcome
    named by its force, ``tenant``)."""
    if attended:
        return str(_("Attendance recorded."))
    if referral.state is State.MISSED:
        return str(_("Recorded: did not attend. The referral waits for another session to be booked."))
    return str(_("Recorded: did not attend. The referral ends as not completed, with the outcome “%(outcome)s”.",
                 outcome=outcome_named(referral.outcome_label, referral.outcome_code, tenant, current_language())))


# ---------------------------------------------------------------- the facts a decision waits for

class FactsForm(Form):
    """The facts a decision waits for, given at review (``cases.services.decide_again``):
    one field per fact, as on the intake form, "Not known yet" still an answer."""

    names: tuple[str, ...] = ()
    submit = SubmitField(_l("Decide again"), widget=GovSubmitInput())

    def facts(self) -> dict[str, Any]:
        """The facts given, by name; one left "Not known yet" is None (still unknown)."""
        return {name: read_fact(name, getattr(self, name).data) for name in self.names}

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        if valid and all(value is None for value in self.facts().values()):
            getattr(self, self.names[0]).errors.append(_("Give at least one of the facts the decision waits for"))
            valid = False
        return valid


def facts_form(names: list[str]) -> type[FactsForm]:
    """A form asking for ``names`` (facts of the catalogue an officer gives)."""
    return type("AskedFactsForm", (FactsForm,), {**{name: _fact_field(name) for name in names},
                                                   "names": tuple(names)})
