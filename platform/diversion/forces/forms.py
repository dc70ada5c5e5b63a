"""The force's settings forms, and the fields of its names and outcome codes that the console's set-up
asks for too (GOV.UK Frontend widgets)."""

from __future__ import annotations

from typing import Any

from flask_babel import LazyString
from flask_babel import gettext as _
from govuk_frontend_wtf.wtforms_widgets import GovCheckboxesInput, GovRadioInput, GovSubmitInput, GovTextInput
from wtforms import IntegerField, RadioField, SelectMultipleField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp

from diversion.cases.rules import MISSED_SESSIONS_BOUNDS
from diversion.forces.onboarding import ForceNames
from diversion.forms import Form, label_of
from diversion.forms import lazy_gettext as _l
from diversion.language import DESCRIBED
from diversion.tenancy.models import NonCompletionAction, Tenant
from diversion.words import LANGUAGES

LOW, HIGH = Tenant.RETENTION_BOUNDS
MISSED_LOW, MISSED_HIGH = MISSED_SESSIONS_BOUNDS


class MonthsField(IntegerField):
    """A whole number of months; anything else is named as such."""

    widget = GovTextInput()

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and str(valuelist[0]).strip() and not str(valuelist[0]).strip().isdigit():
            self.data = None
            raise ValueError(_("Enter the number of months as a whole number, such as 72"))
        super().process_formdata([str(v).strip() for v in valuelist])


class CountField(IntegerField):
    """A whole number; anything else is named as such."""

    widget = GovTextInput()

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and not str(valuelist[0]).strip().isdigit():
            self.data = None
            raise ValueError(_("Enter the number of missed sessions allowed as a whole number, such as 1"))
        super().process_formdata([str(v).strip() for v in valuelist])


class SettingsForm(Form):
    retention_months = MonthsField(
        _l("How long to keep case records, in months (optional)"),
        description=_l("A whole number from %(low)s to %(high)s, such as 72 for six years. Leave empty if not decided.",
                       low=LOW, high=HIGH),
        validators=[Optional(), NumberRange(min=LOW, max=HIGH,
                                            message=_l("Enter a number of months from %(low)s to %(high)s",
                                                       low=LOW, high=HIGH))])
    missed_sessions_allowed = CountField(
        _l("Missed sessions allowed"),
        description=_l("How many sessions a person may miss, each then rebooked, before the referral ends as not "
                       "completed. A whole number from %(low)s to %(high)s; 0 ends it at the first.",
                       low=MISSED_LOW, high=MISSED_HIGH),
        validators=[NumberRange(min=MISSED_LOW, max=MISSED_HIGH,
                                message=_l("Enter a number of missed sessions from %(low)s to %(high)s",
                                           low=MISSED_LOW, high=MISSED_HIGH))])
    brand_colour = StringField(
        _l("Brand colour"), widget=GovTextInput(), description=_l("A # and six hexadecimal digits, such as #1d70b8."),
        validators=[InputRequired(message=_l("Enter the brand colour")),
                    Length(max=7, message=_l("Enter 7 characters")),
                    Regexp(r"^#[0-9a-fA-F]{6}$", message=_l("Enter the colour as a # and six hexadecimal digits, "
                                                            "such as #1d70b8"))])
    languages = SelectMultipleField(
        _l("Languages"), widget=GovCheckboxesInput(),
        description=_l("The languages the force's pages and letters use."),
        choices=[SelectChoice(code, DESCRIBED[code]) for code in LANGUAGES],
        validators=[InputRequired(message=_l("Choose at least one language"))])
    submit = SubmitField(_l("Save settings"), widget=GovSubmitInput())


# What a force does when a person does not complete, in plain words.
ACTION_LABELS = {action: label_of(action) for action in (
    NonCompletionAction.PROSECUTION, NonCompletionAction.CHARGE_BY_POSTAL_REQUISITION, NonCompletionAction.COURT,
    NonCompletionAction.NO_FURTHER_ACTION)}


def _text(label: LazyString, missing: LazyString, *, limit: int = 200, hint: LazyString | str = "") -> StringField:
    return StringField(label, widget=GovTextInput(), description=hint, validators=[
        InputRequired(message=missing),
        Length(max=limit, message=_l("%(label)s must be %(limit)s characters or fewer", label=label, limit=limit))])


def _welsh(label: LazyString, *, limit: int = 200) -> StringField:
    """An optional label in Welsh, for a force that works in Welsh."""
    return StringField(label, widget=GovTextInput(), description=_l("For a force that works in Welsh: what its "
                                                                     "pages say in Welsh."), validators=[
        Optional(),
        Length(max=limit, message=_l("%(label)s must be %(limit)s characters or fewer", label=label, limit=limit))])


def force_name_fields() -> tuple[StringField, StringField]:
    """The force's name, and its name in Welsh."""
    name = _text(_l("Force name"), _l("Enter the force’s name"), hint=_l("As people know it, e.g. “Cleveland Police”."))
    return name, _welsh(_l("Force name in Welsh (optional)"))


def scheme_name_field() -> StringField:
    return _text(_l("Scheme name"), _l("Enter the scheme’s name"),
                 hint=_l("What the force calls its scheme, e.g. “Checkpoint”."))


def outcome_fields() -> tuple[StringField, StringField, StringField, StringField, StringField, StringField,
                              RadioField]:
    """The codes a case records when its referral ends, what they mean (in English, and in Welsh),
    and what happens when a person does not complete."""
    return (
        _text(_l("Code on completion"), _l("Enter the code recorded on completion"), limit=40,
              hint=_l("The outcome code the force records when a person completes, e.g. “outcome-22”.")),
        _text(_l("What the code on completion means"), _l("Enter what the code on completion means"),
              hint=_l("e.g. “No further action (Outcome 22)”.")),
        _text(_l("Code on non-completion"), _l("Enter the code recorded on non-completion"), limit=40,
              hint=_l("The code recorded when a person does not complete, e.g. “prosecution”.")),
        _text(_l("What the code on non-completion means"), _l("Enter what the code on non-completion means"),
              hint=_l("e.g. “Prosecution resumes”.")),
        _welsh(_l("What the code on completion means, in Welsh (optional)")),
        _welsh(_l("What the code on non-completion means, in Welsh (optional)")),
        RadioField(_l("What happens when a person does not complete"), widget=GovRadioInput(),
                   choices=[SelectChoice(k.value, v) for k, v in ACTION_LABELS.items()],
                   validators=[InputRequired(message=_l("Choose what happens when a person does not complete"))]))


def names_entered(form: Any) -> ForceNames:
    """The names and outcome codes entered in a form made of the fields above."""
    return ForceNames(**{name: getattr(form, name).data or "" for name in ForceNames.__dataclass_fields__})


class NamesForm(Form):
    """A force's names and outcome codes, changed once it is open."""

    name, name_cy = force_name_fields()
    scheme_name = scheme_name_field()
    (completed_code, completed_label, not_completed_code, not_completed_label, completed_label_cy,
     not_completed_label_cy, not_completed_action) = outcome_fields()
    submit = SubmitField(_l("Save names and outcome codes"), widget=GovSubmitInput())
