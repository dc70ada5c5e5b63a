"""The form a force admin makes an API token with (GOV.UK Frontend widgets)."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput, GovTextInput
from wtforms import StringField, SubmitField
from wtforms.validators import InputRequired, Length

from diversion.api.bearer import MAX_NAME_LENGTH
from diversion.forms import Form


def token_name_field(example: str) -> StringField:
    """A token's name, as a force's or a provider's token form asks for it."""
    return StringField(
        "Name",
        widget=GovTextInput(),
        description=f"Which system will use it, so that you can tell tokens apart, e.g. “{example}”.",
        validators=[InputRequired(message="Enter a name for the token"),
                    Length(max=MAX_NAME_LENGTH, message=f"The name must be {MAX_NAME_LENGTH} characters or fewer")],
    )


class CreateTokenForm(Form):
    name = token_name_field("Custody records")
    submit = SubmitField("Make a token", widget=GovSubmitInput())
