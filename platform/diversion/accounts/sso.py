"""A force's single sign-on: its own OpenID Connect identity provider (Microsoft
Entra ID or any other), and the people who sign in through it.

A force keeps one ``ForceSignOn``: the issuer it trusts (pinned: the
provider's discovery document must name exactly this issuer), the client id
and client secret the force registered for the platform there (the secret
entered once, kept sealed with the platform's data keys like the providers'
webhook secrets, never shown again, never read from a setting or an
environment variable anyone can name), whether its members *must* sign in
that way (their passwords are then refused), and what happens to a person
the platform does not know yet: refused, or given a role in that force.

A person is found by ``SignOnIdentity``: the (issuer, subject) pair the
provider's ID token carries, never the email address alone, which the
provider's users may be able to change. A new identity is linked to an
account only by a proof the platform holds: a password checked in the same
browser, an invitation's own link, or first-sign-in provisioning into that
force alone.

The protocol itself (discovery, PKCE, the token call, the ID token's
checks) is ``accounts.oidc``; the pages are ``accounts.sso_views``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import current_app
from flask_babel import gettext as _
from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxInput,
    GovRadioInput,
    GovSubmitInput,
    GovTextInput,
)
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column
from wtforms import BooleanField, PasswordField, RadioField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

from diversion import outbound
from diversion.accounts.access import Action, require
from diversion.accounts.models import ForceMembership, Role, User
from diversion.audit.services import record
from diversion.db import Base, TenantScoped, UTCDateTime, utcnow
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.forms import Form, LazyText, PasswordInput
from diversion.forms import lazy_gettext as _l
from diversion.inputs import CONTROL_CHARACTERS_MESSAGE, printable, text_problem
from diversion.sealing import Unopenable, open_text, seal_text
from diversion.tenancy.context import current_scope, scoped
from diversion.tenancy.models import ForceStatus, Tenant
from diversion.words import current_language

if TYPE_CHECKING:
    from diversion.accounts.access import Actor
    from diversion.accounts.invitations import ForceInvitation

REFUSE = "refuse"
# What a force may give a person its provider signs in for the first time.
# Never force admin: that is given by a person, by name.
NEW_PEOPLE_ROLES = (Role.OFFICER, Role.SUPERVISOR)
NEW_PEOPLE = (REFUSE, *(role.value for role in NEW_PEOPLE_ROLES))
MAX_ISSUER_LENGTH = 500
MAX_CLIENT_ID_LENGTH = 255
MAX_SECRET_LENGTH = 1000


# ---------------------------------------------------------------- models

class ForceSignOn(TenantScoped, Base):
    """A force's identity provider: one per force."""

    __tablename__ = "force_sign_ons"
    __tenant_table_args__ = (UniqueConstraint("tenant_id"),)

    issuer: Mapped[str] = mapped_column(String(MAX_ISSUER_LENGTH))
    client_id: Mapped[str] = mapped_column(String(MAX_CLIENT_ID_LENGTH))
    client_secret_sealed: Mapped[str] = mapped_column(Text)
    compulsory: Mapped[bool] = mapped_column(default=False)
    # "refuse", or the force role a person gets at their first sign-in.
    new_people: Mapped[str] = mapped_column(String(32), default=REFUSE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def has_secret(self) -> bool:
        """False until a secret is entered (settings written back from an export carry none,
        or an empty one sealed)."""
        if not self.client_secret_sealed:
            return False
        try:
            return open_text(self.client_secret_sealed) != ""
        except Unopenable:
            return True  # there is one, which the keys do not open: the sign-in says so


    @property
    def new_people_role(self) -> Role | None:
        return None if self.new_people == REFUSE else Role(self.new_people)


class SignOnIdentity(Base):
    """Who a person is at an identity provider: (issuer, subject), linked to one user.

    Global on purpose: the identity belongs to the person, not to a force (a
    person could in principle work for two forces that share a provider);
    what they may open is still their memberships.
    """

    __tablename__ = "sign_on_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(MAX_ISSUER_LENGTH))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# ---------------------------------------------------------------- settings

class SignOnError(FieldError):
    """A refused change to a force's sign-on settings."""


def sign_on_rules() -> outbound.Policy:
    """The outbound rules for identity providers: plain http only where ``SSO_ALLOW_HTTP`` allows it."""
    return outbound.policy(current_app.config, allow_http=bool(current_app.config.get("SSO_ALLOW_HTTP")))


def sign_on_of(tenant: Tenant) -> ForceSignOn | None:
    """The force's sign-on settings, or None (``tenant`` must be the force in scope)."""
    return db.session.scalar(select(ForceSignOn).where(ForceSignOn.tenant_id == tenant.id))


def client_secret(sign_on: ForceSignOn) -> str:
    """The client secret, opened for the token call only: never shown."""
    return open_text(sign_on.client_secret_sealed)


@dataclass(frozen=True)
class _Says:
    """How the settings refuse one text field, each a whole sentence (translated when read)."""

    missing: LazyText
    too_long: LazyText
    on_one_line: LazyText
    no_control: LazyText


_ISSUER = _Says(
    missing=_l("Enter the issuer of your force's identity provider"),
    too_long=_l("The issuer must be %(count)s characters or fewer", count=MAX_ISSUER_LENGTH),
    on_one_line=_l("The issuer must be on one line, without tabs or control characters"),
    no_control=_l("The issuer cannot contain control characters (such as a NUL byte)"))
_CLIENT_ID = _Says(
    missing=_l("Enter the client ID the provider gave you"),
    too_long=_l("The client ID must be %(count)s characters or fewer", count=MAX_CLIENT_ID_LENGTH),
    on_one_line=_l("The client ID must be on one line, without tabs or control characters"),
    no_control=_l("The client ID cannot contain control characters (such as a NUL byte)"))
_CLIENT_SECRET = _Says(
    missing=_l("Enter the client secret the provider gave you"),
    too_long=_l("The client secret must be %(count)s characters or fewer", count=MAX_SECRET_LENGTH),
    on_one_line=_l("The client secret must be on one line, without tabs or control characters"),
    no_control=_l("The client secret cannot contain control characters (such as a NUL byte)"))


_CHOOSE_NEW_PEOPLE = _l("Choose what happens when someone signs in for the first time")
# Each choice said whole, as Welsh needs it.
_LET_IN = {Role.OFFICER: _l("Let them in as an officer"), Role.SUPERVISOR: _l("Let them in as a supervisor")}


def _text(field: str, value: str, *, says: _Says, longest: int) -> str:
    value = value.strip()
    if not value:
        raise SignOnError(field, str(says.missing))
    if len(value) > longest:
        raise SignOnError(field, str(says.too_long))
    if problem := text_problem(value):
        raise SignOnError(field, str(says.no_control if problem == CONTROL_CHARACTERS_MESSAGE else says.on_one_line))
    return value


def check_issuer(issuer: str) -> str:
    """The issuer as it will be pinned. Refuses a blank or over-long one, one with a
    query, and any address the outbound rules refuse (``diversion.outbound``: a full
    https:// address leading to the public internet only)."""
    issuer = _text("issuer", issuer, says=_ISSUER, longest=MAX_ISSUER_LENGTH)
    if "?" in issuer:
        raise SignOnError("issuer", _("The issuer cannot carry a ?query: give it exactly as your provider names "
                                      "it."))
    try:
        outbound.check(issuer, sign_on_rules())
    except outbound.Refused as refusal:
        message = refusal.message.replace("https://example.org/diversion/webhooks",
                                          "https://login.microsoftonline.com/<tenant id>/v2.0")
        raise SignOnError("issuer", message.replace("your endpoint", "your identity provider")) from None
    return issuer


def configure_sign_on(tenant: Tenant, *, issuer: str, client_id: str, client_secret: str | None,
                      compulsory: bool, new_people: str, actor: Actor, secret_required: bool = True) -> ForceSignOn:
    """Set the force's single sign-on (``tenant`` in scope); audited, the secret never.

    ``client_secret`` None (or blank) keeps the sealed one. Refuses an actor
    who may not manage the force's sign-on, an issuer ``check_issuer``
    refuses, a blank or over-long client id or secret, no secret when none is
    kept yet for a new sign-on (unless ``secret_required`` is False, as when a
    force's exported settings, which never carry it, are written back: its
    people then cannot sign in this way until an admin enters it), and a choice for new people
    other than refusing them or making them officers or supervisors.
    """
    require(actor, Action.MANAGE_SIGN_ON, tenant_id=tenant.id)
    issuer = check_issuer(issuer)
    client_id = _text("client_id", client_id, says=_CLIENT_ID, longest=MAX_CLIENT_ID_LENGTH)
    if new_people not in NEW_PEOPLE:
        raise SignOnError("new_people", str(_CHOOSE_NEW_PEOPLE))
    sign_on = sign_on_of(tenant)
    secret = client_secret.strip() if client_secret else ""
    if not secret and sign_on is None and secret_required:
        raise SignOnError("client_secret", str(_CLIENT_SECRET.missing))
    if secret:
        secret = _text("client_secret", secret, says=_CLIENT_SECRET, longest=MAX_SECRET_LENGTH)
    new = sign_on is None
    if sign_on is None:
        sign_on = ForceSignOn(tenant_id=tenant.id, issuer=issuer, client_id=client_id,
                              client_secret_sealed=seal_text(secret) if secret else "")
        db.session.add(sign_on)
    sign_on.issuer, sign_on.client_id = issuer, client_id
    if secret:
        sign_on.client_secret_sealed = seal_text(secret)
    sign_on.compulsory, sign_on.new_people = compulsory, new_people
    db.session.flush()
    record("sign_on.configured", actor=actor, tenant_id=tenant.id, object_type="sign_on", object_id=sign_on.id,
           details={"issuer": issuer, "client_id": client_id, "compulsory": compulsory, "new_people": new_people,
                    "created": new, "new_secret": bool(secret)})
    return sign_on


class SignOnForm(Form):
    """A force's single sign-on settings, as its admin (or the onboarding console) enters them.

    The client secret is never filled back in: left blank, the kept one stays.
    """

    issuer = StringField(
        _l("Issuer"),
        widget=GovTextInput(),
        description=_l("Exactly as your identity provider names itself, for example "
                       "https://login.microsoftonline.com/<tenant id>/v2.0 for Microsoft Entra ID."),
        validators=[InputRequired(message=_ISSUER.missing), Length(max=MAX_ISSUER_LENGTH, message=_ISSUER.too_long)],
    )
    client_id = StringField(
        _l("Client ID"),
        widget=GovTextInput(),
        description=_l("The application (client) ID your provider gave the platform."),
        validators=[InputRequired(message=_CLIENT_ID.missing),
                    Length(max=MAX_CLIENT_ID_LENGTH, message=_CLIENT_ID.too_long)],
    )
    client_secret = PasswordField(
        _l("Client secret"),
        widget=PasswordInput(),
        description=_l("Entered once and kept encrypted: it is never shown again. Leave it blank to keep the one "
                       "already saved."),
        validators=[Optional(), Length(max=MAX_SECRET_LENGTH, message=_CLIENT_SECRET.too_long)],
    )
    compulsory = BooleanField(
        _l("Members must sign in with the force's account (their passwords are refused)"),
        widget=GovCheckboxInput(),
    )
    new_people = RadioField(
        _l("When someone signs in for the first time"),
        widget=GovRadioInput(),
        choices=[SelectChoice(REFUSE, _l("Refuse them: people join by invitation only")),
                 *(SelectChoice(role.value, _LET_IN[role]) for role in NEW_PEOPLE_ROLES)],
        default=REFUSE,
        validators=[InputRequired(message=_CHOOSE_NEW_PEOPLE)],
    )
    submit = SubmitField(_l("Save sign-on settings"), widget=GovSubmitInput())

    def settings(self) -> dict[str, Any]:
        """The keyword arguments of ``configure_sign_on`` this form carries."""
        return {"issuer": self.issuer.data or "", "client_id": self.client_id.data or "",
                "client_secret": self.client_secret.data or None, "compulsory": bool(self.compulsory.data),
                "new_people": self.new_people.data or ""}

    @classmethod
    def of(cls, sign_on: ForceSignOn | None, **kwargs: Any) -> SignOnForm:
        """The form filled in from saved settings (the secret left out)."""
        if sign_on is None:
            return cls(**kwargs)
        return cls(data={"issuer": sign_on.issuer, "client_id": sign_on.client_id,
                         "compulsory": sign_on.compulsory, "new_people": sign_on.new_people}, **kwargs)

    @classmethod
    def for_page(cls, sign_on: ForceSignOn | None, *, submitted: bool) -> SignOnForm:
        """The form a settings page shows: the one submitted, or else filled in from the saved
        settings (``of``); its client secret's hint speaks of keeping a saved secret only when
        one is saved."""
        form = cls() if submitted else cls.of(sign_on)
        if sign_on is None or not sign_on.has_secret:
            form.client_secret.description = _("Entered once and kept encrypted: it is never shown again.")
        return form


# ---------------------------------------------------------------- who signs in

def forces_signing_on() -> list[Tenant]:
    """The active forces whose people may sign in through their own provider, by name.

    Reads each force's settings in its own scope: the settings are the
    force's rows, under every isolation layer.
    """
    found = []
    tenants = db.session.scalars(select(Tenant).where(Tenant.status == ForceStatus.ACTIVE).order_by(Tenant.name))
    scope = current_scope()
    for tenant in tenants.all():
        with scoped(tenant.id, scope.user_id):
            sign_on = sign_on_of(tenant)
            if sign_on is not None and sign_on.has_secret:
                found.append(tenant)
    return found


def compulsory_forces(user: User) -> list[Tenant]:
    """The active forces where ``user`` is a member and must sign in with the force's account."""
    from diversion.accounts.services import workspaces

    found = []
    with scoped(None, user.id):
        places = workspaces(user)
    for tenant, _roles in places:
        if tenant.status is not ForceStatus.ACTIVE:
            continue
        with scoped(tenant.id, user.id):
            sign_on = sign_on_of(tenant)
            if sign_on is not None and sign_on.compulsory and sign_on.has_secret:
                found.append(tenant)
    return found


class SignInRefused(Exception):  # noqa: N818 - reads as the condition it reports
    """A single sign-on refused: ``reason`` for the audit log, ``message`` for the
    person, ``status`` for the page (400 for a sign-in this browser did not start)."""

    def __init__(self, reason: str, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Signed:
    """Who the provider says signed in: the ID token's checked claims."""

    issuer: str
    subject: str
    email: str | None
    name: str | None


def signed_from_claims(claims: dict[str, Any]) -> Signed:
    """What the checked claims say; a name is kept to plain text on one line (the provider's users type it)."""
    email = claims.get("email")
    name = claims.get("name") or " ".join(
        str(part) for part in (claims.get("given_name"), claims.get("family_name")) if part) or None
    shown = printable(" ".join(str(name).split()))[:200] if name else ""
    return Signed(issuer=str(claims["iss"]), subject=str(claims["sub"]),
                  email=str(email) if isinstance(email, str) and email else None, name=shown or None)


def identity_of(issuer: str, subject: str) -> SignOnIdentity | None:
    return db.session.scalar(select(SignOnIdentity).where(SignOnIdentity.issuer == issuer,
                                                          SignOnIdentity.subject == subject))


def link_identity(user: User, signed: Signed, tenant: Tenant, *, how: str) -> SignOnIdentity:
    """Link (issuer, subject) to ``user``; audited with how it was proven."""
    identity = SignOnIdentity(issuer=signed.issuer, subject=signed.subject, user_id=user.id)
    db.session.add(identity)
    db.session.flush()
    record("sign_on.identity_linked", actor=user, tenant_id=tenant.id, object_type="user", object_id=user.id,
           details={"issuer": signed.issuer, "how": how})
    return identity


def _roles_here(user: User) -> frozenset[Role]:
    """The user's roles in the force in scope."""
    return frozenset(db.session.scalars(select(ForceMembership.role).where(ForceMembership.user_id == user.id)))


def _provision(tenant: Tenant, sign_on: ForceSignOn, signed: Signed) -> User:
    """A new account for a person the force lets in at their first sign-in, a member of that force only."""
    from diversion.accounts import services
    from diversion.accounts.access import SYSTEM

    role = sign_on.new_people_role
    if role is None:
        raise SignInRefused("not_invited", _("%(force)s lets people in by invitation only. Ask your force's admin "
                                             "for an invitation, then sign in from its link.",
                                             force=tenant.name_in(current_language())))
    if signed.email is None:
        raise SignInRefused("no_email", _("Your account at %(force)s's identity provider gives no email address, "
                                          "so the platform cannot make an account for you. Ask your force's admin "
                                          "for an invitation.", force=tenant.name_in(current_language())))
    try:
        email = services.normalise_email(signed.email)
    except services.AccountError:
        raise SignInRefused("no_email", _("The email address your identity provider gives is not one the "
                                          "platform can use. Ask your force's admin for an invitation.")) from None
    if services.find_user(email) is not None:
        raise SignInRefused("email_taken", _("There is already an account with your email address. Sign in with "
                                             "its password first, then sign in with your force's account: the two "
                                             "are then joined."))
    user = services.create_user(email=email, name=signed.name or email, password=None, actor=SYSTEM)
    services.add_membership(tenant, user, role, actor=SYSTEM)
    link_identity(user, signed, tenant, how="first_sign_in")
    record("sign_on.person_provisioned", actor=SYSTEM, tenant_id=tenant.id, object_type="user", object_id=user.id,
           details={"role": role.value, "issuer": signed.issuer})
    return user


def _taking_up(tenant: Tenant, invitation: ForceInvitation, signed: Signed, identity: SignOnIdentity | None,
               proven_user: User | None) -> User:
    """The account that takes up ``invitation`` through its own link: the identity's
    account; or the signed-in (or password-proven) account of the invited
    address; or a new account of the invited address, with no password. Refuses
    an invited address that has an account this browser has not proven."""
    from diversion.accounts import invitations, services

    if identity is not None:
        user = db.session.get(User, identity.user_id)
        assert user is not None  # noqa: S101 - the foreign key says so
    elif proven_user is not None and proven_user.email == invitation.email:
        user = proven_user
        link_identity(user, signed, tenant, how="password")
    elif services.find_user(invitation.email) is not None:
        raise SignInRefused("email_taken", _("There is already an account with the invited email address. Sign "
                                             "in with its password first, then open the invitation link again."))
    else:
        user = User(email=invitation.email, name=(signed.name or invitation.name)[:200], password_hash=None)
        db.session.add(user)
        db.session.flush()
        record("user.created", actor=user, tenant_id=None, object_type="user", object_id=user.id,
               details={"invitation": str(invitation.id), "method": "sso"})
        link_identity(user, signed, tenant, how="invitation")
    if not user.active:
        raise SignInRefused("inactive", _("Your account has been deactivated. Ask your force's admin."))
    try:
        invitations.take_up_force_invitation(invitation, user)
    except services.AccountError as error:
        raise SignInRefused("invitation_unusable", error.message) from None
    return user


def user_signing_in(tenant: Tenant, sign_on: ForceSignOn, signed: Signed, *, proven_user: User | None = None,
                    invitation: ForceInvitation | None = None) -> User:
    """The account a checked sign-in at ``tenant`` (in scope) opens.

    With ``invitation`` (opened from the token the sign-in started with: its
    own link), the account that takes it up (``_taking_up``). Otherwise by the
    (issuer, subject) identity when it is known; else linked to
    ``proven_user`` (a member of this force who proved their password in this
    browser); else, as the force chooses, a new account with the force's
    default role, or refused. Never by the email claim.

    Refuses (``SignInRefused``) a deactivated account, an account that is not
    a member of the force, and an identity from another issuer than the force's.
    """
    if signed.issuer != sign_on.issuer:
        raise SignInRefused("issuer", _("The sign-in came from another identity provider than your force's."))
    identity = identity_of(signed.issuer, signed.subject)
    if identity is not None:
        identity.last_used_at = utcnow()
    if invitation is not None:
        return _taking_up(tenant, invitation, signed, identity, proven_user)
    if identity is not None:
        user = db.session.get(User, identity.user_id)
        assert user is not None  # noqa: S101 - the foreign key says so
    elif proven_user is not None and _roles_here(proven_user):
        user = proven_user
        link_identity(user, signed, tenant, how="password")
    else:
        return _provision(tenant, sign_on, signed)
    if not user.active:
        raise SignInRefused("inactive", _("Your account has been deactivated. Ask your force's admin."))
    if not _roles_here(user):
        raise SignInRefused("not_member", _("Your account is not a member of %(force)s. Ask your force's admin "
                                            "for an invitation.", force=tenant.name_in(current_language())))
    return user


def linked_identities(tenant: Tenant) -> Sequence[User]:
    """The force's members (in scope) who have signed in through a provider at least once."""
    return db.session.scalars(
        select(User).join(ForceMembership, ForceMembership.user_id == User.id)
        .join(SignOnIdentity, SignOnIdentity.user_id == User.id).distinct().order_by(User.name)).all()
