"""The form a force admin makes an API token with (GOV.UK Frontend widgets)."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput
from wtforms import SubmitField

from diversion.accounts.forms import token_name_field
from diversion.forms import Form


class CreateTokenForm(Form):
    name = token_name_field("Custody records")
    submit = SubmitField("Make a token", widget=GovSubmitInput())
