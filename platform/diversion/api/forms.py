"""The form a force admin makes an API token with (GOV.UK Frontend widgets)."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput
from wtforms import SubmitField

from diversion.accounts.forms import token_name_field
from diversion.forms import Form
from diversion.forms import lazy_gettext as _l


class CreateTokenForm(Form):
    name = token_name_field(_l("Custody records"))
    submit = SubmitField(_l("Make a token"), widget=GovSubmitInput())
