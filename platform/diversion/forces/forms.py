"""The force's settings form (GOV.UK Frontend widgets)."""

from __future__ import annotations

from typing import Any

from govuk_frontend_wtf.wtforms_widgets import GovCheckboxesInput, GovSubmitInput, GovTextInput
from wtforms import IntegerField, SelectMultipleField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp

from diversion.cases.rules import MISSED_SESSIONS_BOUNDS
from diversion.forms import Form
from diversion.language import LANGUAGES
from diversion.tenancy.models import Tenant

LANGUAGE_LABELS = {"en": "English", "cy": "Cymraeg (Welsh)"}
LOW, HIGH = Tenant.RETENTION_BOUNDS
MISSED_LOW, MISSED_HIGH = MISSED_SESSIONS_BOUNDS


class MonthsField(IntegerField):
    """A whole number of months; anything else is named as such."""

    widget = GovTextInput()

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and str(valuelist[0]).strip() and not str(valuelist[0]).strip().isdigit():
            self.data = None
            raise ValueError("Enter the number of months as a whole number, such as 72")
        super().process_formdata([str(v).strip() for v in valuelist])


class CountField(IntegerField):
    """A whole number; anything else is named as such."""

    widget = GovTextInput()

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and not str(valuelist[0]).strip().isdigit():
            self.data = None
            raise ValueError("Enter the number of missed sessions allowed as a whole number, such as 1")
        super().process_formdata([str(v).strip() for v in valuelist])


class SettingsForm(Form):
    retention_months = MonthsField(
        "How long to keep case records, in months (optional)",
        description=f"A whole number from {LOW} to {HIGH}, such as 72 for six years. Leave empty if not decided.",
        validators=[Optional(), NumberRange(min=LOW, max=HIGH,
                                            message=f"Enter a number of months from {LOW} to {HIGH}")])
    missed_sessions_allowed = CountField(
        "Missed sessions allowed",
        description=f"How many sessions a person may miss, each then rebooked, before the referral ends as not "
                    f"completed. A whole number from {MISSED_LOW} to {MISSED_HIGH}; 0 ends it at the first.",
        validators=[NumberRange(min=MISSED_LOW, max=MISSED_HIGH,
                                message=f"Enter a number of missed sessions from {MISSED_LOW} to {MISSED_HIGH}")])
    brand_colour = StringField(
        "Brand colour", widget=GovTextInput(), description="A # and six hexadecimal digits, such as #1d70b8.",
        validators=[InputRequired(message="Enter the brand colour"), Length(max=7, message="Enter 7 characters"),
                    Regexp(r"^#[0-9a-fA-F]{6}$", message="Enter the colour as a # and six hexadecimal digits, "
                                                         "such as #1d70b8")])
    languages = SelectMultipleField(
        "Languages", widget=GovCheckboxesInput(), description="The languages the force's pages and letters use.",
        choices=[SelectChoice(code, LANGUAGE_LABELS[code]) for code in LANGUAGES],
        validators=[InputRequired(message="Choose at least one language")])
    submit = SubmitField("Save settings", widget=GovSubmitInput())
