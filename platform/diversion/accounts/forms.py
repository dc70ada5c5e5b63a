"""Sign-in and membership forms (GOV.UK Frontend widgets)."""

from __future__ import annotations

from flask_babel import LazyString
from govuk_frontend_wtf.wtforms_widgets import (
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextInput,
)
from wtforms import EmailField, PasswordField, RadioField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import EqualTo, InputRequired, Length, Optional, ValidationError

from diversion.accounts.models import FORCE_ROLES, ProviderRole
from diversion.accounts.services import MIN_PASSWORD_LENGTH, AccountError, normalise_email
from diversion.forms import Form, Longest, PasswordInput, label_of
from diversion.forms import lazy_gettext as _l

MAX_TOKEN_NAME_LENGTH = 100  # as jsonapi.tokens keeps it


def _an_address(form: Form, field: EmailField) -> None:
    """Refuses what is not an email address, with the words the services use for it (``normalise_email``)."""
    try:
        normalise_email(field.data or "")
    except AccountError as error:
        raise ValidationError(error.message) from error


def email_field(missing: str | LazyString, *, checked: bool = False) -> EmailField:
    """A person's email address, required (``missing`` says so when it is left out); ``checked``: one
    that is not an address is named here, beside the form's other mistakes, not after they are put
    right (sign-in leaves it to the service, which records a malformed attempt)."""
    return EmailField(
        _l("Email address"),
        widget=GovTextInput(),
        validators=[InputRequired(message=missing), Longest(254), *([_an_address] if checked else [])],
    )


class SignInForm(Form):
    email = email_field(_l("Enter your email address"))
    password = PasswordField(
        _l("Password"),
        widget=PasswordInput(),
        validators=[InputRequired(message=_l("Enter your password")), Longest(1024)],
    )
    submit = SubmitField(_l("Sign in"), widget=GovSubmitInput())


def force_role_field() -> RadioField:
    """The choice of one force role, as adding a member and changing a role ask it."""
    return RadioField(
        _l("Role"),
        widget=GovRadioInput(),
        choices=[SelectChoice(role.value, label_of(role)) for role in FORCE_ROLES],
        validators=[InputRequired(message=_l("Choose a role"))],
    )


class AddMemberForm(Form):
    """A platform admin gives a person (an account, or a new one) a role in a force."""

    force = SelectField(_l("Force"), widget=GovSelect(), validators=[InputRequired(message=_l("Choose the force"))])
    email = email_field(_l("Enter the person's email address"))
    name = StringField(
        _l("Full name"),
        widget=GovTextInput(),
        description=_l("Needed only for someone who has no account yet."),
        validators=[Optional(), Longest(200)],
    )
    password = PasswordField(
        _l("Initial password"),
        widget=PasswordInput(),
        description=_l("Only for a new account: at least %(num)s characters. Share it with them securely.",
                       num=MIN_PASSWORD_LENGTH),
        validators=[Optional(), Longest(1024)],
    )
    role = force_role_field()
    submit = SubmitField(_l("Add to the force"), widget=GovSubmitInput())


class ChangeRoleForm(Form):
    role = force_role_field()
    submit = SubmitField(_l("Save the role"), widget=GovSubmitInput())


class ConfirmForm(Form):
    """An empty form: a POST button carrying the CSRF token."""


def token_name_field(example: str | LazyString) -> StringField:
    """A token's name, as a force's or a provider's token form asks for it."""
    return StringField(
        _l("Name"),
        widget=GovTextInput(),
        description=_l("Which system will use it, so that you can tell tokens apart, e.g. “%(example)s”.",
                       example=example),
        validators=[InputRequired(message=_l("Enter a name for the token")),
                    Length(max=MAX_TOKEN_NAME_LENGTH,
                           message=_l("The name must be %(num)s characters or fewer", num=MAX_TOKEN_NAME_LENGTH))],
    )


# ---------------------------------------------------------------- invitations

def invitee_fields() -> tuple[StringField, EmailField]:
    """A person invited: their name and their email address, each mistake named at once."""
    name = StringField(
        _l("Full name"), widget=GovTextInput(),
        validators=[InputRequired(message=_l("Enter the person's name")),
                    Length(max=200, message=_l("The name must be %(num)s characters or fewer", num=200))])
    return name, email_field(_l("Enter the person's email address"), checked=True)


class InviteForm(Form):
    """A force admin invites a person to the force, with a role."""

    name, email = invitee_fields()
    role = force_role_field()
    submit = SubmitField(_l("Send the invitation"), widget=GovSubmitInput())


class ProviderInviteForm(Form):
    """A provider admin invites a person to work for the provider."""

    name, email = invitee_fields()
    role = RadioField(
        _l("Role"), widget=GovRadioInput(),
        choices=[SelectChoice(ProviderRole.STAFF.value, _l("Staff: works the provider's referrals")),
                 SelectChoice(ProviderRole.ADMIN.value, _l("Admin: also manages its people, API tokens and webhook"))],
        validators=[InputRequired(message=_l("Choose a role"))])
    submit = SubmitField(_l("Send the invitation"), widget=GovSubmitInput())


class ProviderRoleForm(Form):
    role = RadioField(
        _l("Role"), widget=GovRadioInput(),
        choices=[SelectChoice(role.value, label_of(role)) for role in ProviderRole],
        validators=[InputRequired(message=_l("Choose a role"))])
    submit = SubmitField(_l("Save the role"), widget=GovSubmitInput())


class FirstAdminForm(Form):
    """A platform admin invites the admin of a force or a provider."""

    organisation = SelectField(_l("Force or provider"), widget=GovSelect(), validate_choice=False,
                               validators=[InputRequired(message=_l("Choose the force or provider"))])
    name, email = invitee_fields()
    submit = SubmitField(_l("Send the invitation"), widget=GovSubmitInput())


class NewAccountForm(Form):
    """Accepting an invitation with a new account: the person's name and a password."""

    name = StringField(
        _l("Your full name"), widget=GovTextInput(),
        validators=[InputRequired(message=_l("Enter your full name")),
                    Length(max=200, message=_l("Your name must be %(num)s characters or fewer", num=200))])
    password = PasswordField(
        _l("Create a password"), widget=PasswordInput(),
        description=_l("At least %(num)s characters. A few unrelated words make a good one.", num=MIN_PASSWORD_LENGTH),
        validators=[InputRequired(message=_l("Create a password")),
                    Length(min=MIN_PASSWORD_LENGTH,
                           message=_l("The password must be at least %(num)s characters", num=MIN_PASSWORD_LENGTH)),
                    Length(max=1024, message=_l("The password must be %(num)s characters or fewer", num=1024))])
    confirm = PasswordField(
        _l("Type the password again"), widget=PasswordInput(),
        validators=[InputRequired(message=_l("Type the password again")),
                    EqualTo("password", message=_l("The two passwords must be the same"))])
    submit = SubmitField(_l("Create my account and accept"), widget=GovSubmitInput())
