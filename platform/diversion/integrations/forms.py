"""The forms a provider admin manages integrations with (GOV.UK Frontend widgets)."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput, GovTextInput
from wtforms import StringField, SubmitField
from wtforms.validators import InputRequired, Length

from diversion.api.forms import token_name_field
from diversion.forms import Form
from diversion.integrations.services import MAX_URL_LENGTH


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
