"""The force's settings form (GOV.UK Frontend widgets)."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from govuk_frontend_wtf.wtforms_widgets import GovCheckboxesInput, GovSubmitInput, GovTextInput
from wtforms import IntegerField, SelectMultipleField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp

from diversion.cases.rules import MISSED_SESSIONS_BOUNDS
from diversion.forms import Form
from diversion.forms import lazy_gettext as _l
from diversion.language import DESCRIBED
from diversion.tenancy.models import Tenant
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
