"""Sign-in and membership forms (GOV.UK Frontend widgets)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovPasswordInput,
    GovRadioInput,
    GovSubmitInput,
    GovTextInput,
)
from wtforms import EmailField, PasswordField, RadioField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

from diversion.accounts.models import FORCE_ROLES
from diversion.accounts.services import MIN_PASSWORD_LENGTH


class SignInForm(FlaskForm):
    email = EmailField(
        "Email address",
        widget=GovTextInput(),
        validators=[InputRequired(message="Enter your email address"), Length(max=254)],
    )
    password = PasswordField(
        "Password",
        widget=GovPasswordInput(),
        validators=[InputRequired(message="Enter your password"), Length(max=1024)],
    )
    submit = SubmitField("Sign in", widget=GovSubmitInput())


class AddMemberForm(FlaskForm):
    email = EmailField(
        "Email address",
        widget=GovTextInput(),
        validators=[InputRequired(message="Enter the person's email address"), Length(max=254)],
    )
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
    role = RadioField(
        "Role",
        widget=GovRadioInput(),
        choices=[SelectChoice(role.value, role.label) for role in FORCE_ROLES],
        validators=[InputRequired(message="Choose a role")],
    )
    submit = SubmitField("Add member", widget=GovSubmitInput())


class ConfirmForm(FlaskForm):
    """An empty form: a POST button carrying the CSRF token."""
