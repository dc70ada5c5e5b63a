"""Sign-in and membership forms (GOV.UK Frontend widgets)."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import (
    GovPasswordInput,
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextInput,
)
from wtforms import EmailField, PasswordField, RadioField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

from diversion.accounts.models import FORCE_ROLES
from diversion.accounts.services import MIN_PASSWORD_LENGTH
from diversion.forms import Form

MAX_TOKEN_NAME_LENGTH = 100  # as jsonapi.tokens keeps it


def email_field(missing: str) -> EmailField:
    """A person's email address, required (``missing`` says so when it is left out)."""
    return EmailField(
        "Email address",
        widget=GovTextInput(),
        validators=[InputRequired(message=missing), Length(max=254)],
    )


class SignInForm(Form):
    email = email_field("Enter your email address")
    password = PasswordField(
        "Password",
        widget=GovPasswordInput(),
        validators=[InputRequired(message="Enter your password"), Length(max=1024)],
    )
    submit = SubmitField("Sign in", widget=GovSubmitInput())


def force_role_field() -> RadioField:
    """The choice of one force role, as adding a member and changing a role ask it."""
    return RadioField(
        "Role",
        widget=GovRadioInput(),
        choices=[SelectChoice(role.value, role.label) for role in FORCE_ROLES],
        validators=[InputRequired(message="Choose a role")],
    )


class AddMemberForm(Form):
    """A platform admin gives a person (an account, or a new one) a role in a force."""

    force = SelectField("Force", widget=GovSelect(), validators=[InputRequired(message="Choose the force")])
    email = email_field("Enter the person's email address")
    name = StringField(
        "Full name",
        widget=GovTextInput(),
        description="Needed only for someone who has no account yet.",
        validators=[Optional(), Length(max=200)],
    )
    password = PasswordField(
        "Initial password",
        widget=GovPasswordInput(),
        description=f"Only for a new account: at least {MIN_PASSWORD_LENGTH} characters. "
        "Share it with them securely.",
        validators=[Optional(), Length(max=1024)],
    )
    role = force_role_field()
    submit = SubmitField("Add to the force", widget=GovSubmitInput())


class ChangeRoleForm(Form):
    role = force_role_field()
    submit = SubmitField("Save the role", widget=GovSubmitInput())


class ConfirmForm(Form):
    """An empty form: a POST button carrying the CSRF token."""


def token_name_field(example: str) -> StringField:
    """A token's name, as a force's or a provider's token form asks for it."""
    return StringField(
        "Name",
        widget=GovTextInput(),
        description=f"Which system will use it, so that you can tell tokens apart, e.g. “{example}”.",
        validators=[InputRequired(message="Enter a name for the token"),
                    Length(max=MAX_TOKEN_NAME_LENGTH,
                           message=f"The name must be {MAX_TOKEN_NAME_LENGTH} characters or fewer")],
    )
