"""The form a force admin makes an API token with (GOV.UK Frontend widgets)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput, GovTextInput
from wtforms import StringField, SubmitField
from wtforms.validators import InputRequired, Length

from diversion.api.services import MAX_NAME_LENGTH


class CreateTokenForm(FlaskForm):
    name = StringField(
        "Name",
        widget=GovTextInput(),
        description="Which system will use it, so that you can tell tokens apart, e.g. “Custody records”.",
        validators=[InputRequired(message="Enter a name for the token"),
                    Length(max=MAX_NAME_LENGTH, message=f"The name must be {MAX_NAME_LENGTH} characters or fewer")],
    )
    submit = SubmitField("Make a token", widget=GovSubmitInput())
