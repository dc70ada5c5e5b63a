"""Forms of the provider workspace (filters, accepting, booking, attendance, completion) and of its
integrations (API tokens, the webhook endpoint)."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxInput,
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import BooleanField, RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, Regexp

from diversion.accounts.forms import token_name_field
from diversion.forms import Form, GovDateField
from diversion.providers.webhooks import MAX_URL_LENGTH


class AcceptForm(Form):
    submit = SubmitField("Accept the referral", widget=GovSubmitInput())


class BookForm(Form):
    day = GovDateField("Date of the session", format="%d %m %Y", description="For example, 27 3 2027",
                       validators=[InputRequired(message="Enter the date of the session as day, month and year")])
    time = StringField("Start time", widget=GovTextInput(), description="24-hour clock, UK time, for example 14:30",
                       validators=[InputRequired(message="Enter the start time"),
                                   Regexp(r"^([01]?\d|2[0-3]):[0-5]\d$",
                                          message="Enter the start time as hours and minutes, like 14:30")])
    venue = StringField("Venue", widget=GovTextInput(), description="Where the person should go",
                        validators=[InputRequired(message="Enter where the session takes place"), Length(max=300)])
    submit = SubmitField("Book the session", widget=GovSubmitInput())


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


class CompleteForm(Form):
    note = TextAreaField("Note (optional)", widget=GovTextArea(), validators=[Optional(), Length(max=500)])
    confirm = BooleanField("I confirm the person has completed the course", widget=GovCheckboxInput(),
                           validators=[InputRequired(message="Confirm that the course is completed")])
    submit = SubmitField("Record completion", widget=GovSubmitInput())


class OrganisationForm(Form):
    provider = SelectField("Organisation", widget=GovSelect(),
                           validators=[InputRequired(message="Choose an organisation")])
    submit = SubmitField("Switch", widget=GovSubmitInput())


class ProviderTokenForm(Form):
    name = token_name_field("Case management")
    submit = SubmitField("Make a token", widget=GovSubmitInput())


class WebhookForm(Form):
    url = StringField(
        "Endpoint address",
        widget=GovTextInput(),
        description="Where we POST a signed event when a referral is sent to you or changes, "
                    "e.g. https://example.org/diversion/webhooks.",
        validators=[InputRequired(message="Enter the address of your endpoint"),
                    Length(max=MAX_URL_LENGTH, message=f"The address must be {MAX_URL_LENGTH} characters or fewer")],
    )
    submit = SubmitField("Save the endpoint", widget=GovSubmitInput())
