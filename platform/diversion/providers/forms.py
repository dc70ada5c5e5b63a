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
from diversion.forms import lazy_gettext as _l
from diversion.providers.webhooks import MAX_URL_LENGTH


class AcceptForm(Form):
    submit = SubmitField(_l("Accept the referral"), widget=GovSubmitInput())


class DeclineForm(Form):
    reason = TextAreaField(_l("Why can you not take this referral on?"), widget=GovTextArea(),
                           description=_l("The force reads this on its case page, e.g. no places before the deadline."),
                           validators=[InputRequired(message=_l("Give the reason the referral is declined")),
                                       Length(max=1000, message=_l("The reason must be 1000 characters or fewer"))])
    submit = SubmitField(_l("Decline the referral"), widget=GovSubmitInput())


class TestEventForm(Form):
    submit = SubmitField(_l("Send a test event"), widget=GovSubmitInput())


class CompleteForm(Form):
    note = TextAreaField(_l("Note (optional)"), widget=GovTextArea(), validators=[Optional(), Longest(500)])
    confirm = BooleanField(_l("I confirm the person has completed the course"), widget=GovCheckboxInput(),
                           validators=[InputRequired(message=_l("Confirm that the course is completed"))])
    submit = SubmitField(_l("Record completion"), widget=GovSubmitInput())


class OrganisationForm(Form):
    provider = SelectField(_l("Organisation"), widget=GovSelect(),
                           validators=[InputRequired(message=_l("Choose an organisation"))])
    submit = SubmitField(_l("Switch"), widget=GovSubmitInput())


class ProviderTokenForm(Form):
    name = token_name_field("Case management")
    submit = SubmitField(_l("Make a token"), widget=GovSubmitInput())


class WebhookForm(Form):
    url = StringField(
        _l("Endpoint address"),
        widget=GovTextInput(),
        description=_l("Where we POST a signed event when a referral is sent to you or changes, "
                       "e.g. https://example.org/diversion/webhooks."),
        validators=[InputRequired(message=_l("Enter the address of your endpoint")),
                    Length(max=MAX_URL_LENGTH,
                           message=_l("The address must be %(max)s characters or fewer", max=MAX_URL_LENGTH))],
    )
    submit = SubmitField(_l("Save the endpoint"), widget=GovSubmitInput())
