"""Forms of the provider workspace (filters, accepting, booking, attendance, completion) and of its
integrations (API tokens, the webhook endpoint)."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxInput,
    GovSelect,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import BooleanField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from diversion.accounts.forms import token_name_field
from diversion.forms import Form, Longest
from diversion.providers.webhooks import MAX_URL_LENGTH


class AcceptForm(Form):
    submit = SubmitField("Accept the referral", widget=GovSubmitInput())


class DeclineForm(Form):
    reason = TextAreaField("Why can you not take this referral on?", widget=GovTextArea(),
                           description="The force reads this on its case page, e.g. no places before the deadline.",
                           validators=[InputRequired(message="Give the reason the referral is declined"),
                                       Length(max=1000, message="The reason must be 1000 characters or fewer")])
    submit = SubmitField("Decline the referral", widget=GovSubmitInput())


class TestEventForm(Form):
    submit = SubmitField("Send a test event", widget=GovSubmitInput())


class CompleteForm(Form):
    note = TextAreaField("Note (optional)", widget=GovTextArea(), validators=[Optional(), Longest(500)])
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
