"""Invitations by email: a job sends the link through the platform's mail server.

When ``MAIL_SERVER`` is set, making an invitation queues this job once the
change is committed (``jobs.defer_after_commit``): an invitation abandoned
with its request is never mailed. The job's arguments are kept by the job
queue (a table, on PostgreSQL) until it has run, and the link carries the
invitation's token, which the platform keeps nowhere else: so the message is
sealed with the platform's data keys (``PERSONAL_DATA_KEYS``) before it is
queued and opened only by the job. An invitation withdrawn, replaced or taken
up before the job runs is not mailed.

Mail goes out with ``smtplib`` to ``MAIL_SERVER``:``MAIL_PORT``, from
``MAIL_FROM``; ``MAIL_STARTTLS`` asks for TLS first and ``MAIL_USERNAME`` /
``MAIL_PASSWORD`` sign in, for a relay that wants them. A refusal by the
server fails the job, which is tried again a few times, then kept as failed
(the inviter still has the link shown to them).
"""

from __future__ import annotations

import json
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import TYPE_CHECKING, Any

import procrastinate
from babel.dates import format_date, format_time
from flask import current_app
from flask_babel import get_locale
from flask_babel import gettext as _

from diversion.accounts.access import SYSTEM
from diversion.audit.services import record
from diversion.db import LONDON
from diversion.extensions import db
from diversion.jobs import defer_after_commit, task
from diversion.sealing import data_cipher
from diversion.tenancy.context import scoped

if TYPE_CHECKING:
    from diversion.accounts.invitations import Invitation

MAIL_INVITATION = "accounts.mail_invitation"
SEALED_FOR_SECONDS = 8 * 24 * 3600  # longer than an invitation lasts; a job older than that sends nothing


def _message_text(invitation: Invitation, *, link: str, organisation: str) -> str:
    from diversion.accounts.models import ProviderRole

    if isinstance(invitation.role, ProviderRole):
        role = _("an admin") if invitation.role is ProviderRole.ADMIN else _("a member of staff")
    else:
        role = invitation.role.with_article
    until = invitation.expires_at.astimezone(LONDON)
    locale = get_locale() or "en"  # the inviter's language: the email is written in their request
    when = _("%(date)s at %(time)s", date=format_date(until.date(), "d MMMM y", locale=locale),
             time=format_time(until.time(), "HH:mm", locale=locale))
    return str(
        _("Hello %(name)s,", name=invitation.name) + "\n\n"
        + _("You are invited to join %(organisation)s on diversion as %(role)s.", organisation=organisation,
            role=role) + "\n\n"
        + _("To accept, open this link:") + f"\n\n{link}\n\n"
        + _("The link works once, until %(until)s (UK time). Do not pass it on: whoever opens it can take up "
            "the invitation.", until=when) + "\n\n"
        + _("If you were not expecting this email, you can ignore it.") + "\n"
    )


def send_invitation_after_commit(invitation: Invitation, *, link: str, organisation: str) -> None:
    """Queue the email of ``invitation`` (whose link is ``link``) for when the change commits."""
    from diversion.accounts.invitations import ForceInvitation

    tenant_id = invitation.tenant_id if isinstance(invitation, ForceInvitation) else None
    content = {"to": invitation.email, "name": invitation.name,
               "subject": _("You are invited to join %(organisation)s on diversion", organisation=organisation),
               "text": _message_text(invitation, link=link, organisation=organisation)}
    sealed = data_cipher().encrypt(json.dumps(content).encode()).decode()
    defer_after_commit(MAIL_INVITATION, lock=f"{MAIL_INVITATION}:{invitation.id}", sealed=sealed,
                       invitation_id=str(invitation.id),
                       tenant_id=tenant_id)


def _still_wanted(invitation_id: uuid.UUID, tenant_id: int | None) -> bool:
    from diversion.accounts.invitations import ForceInvitation, ProviderInvitation

    found: Any = (db.session.get(ForceInvitation, invitation_id) if tenant_id is not None
                  else db.session.get(ProviderInvitation, invitation_id))
    return found is not None and found.usable


def deliver(content: dict[str, str]) -> None:
    """Send one message through ``MAIL_SERVER``; raises what ``smtplib`` raises."""
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = formataddr((content["name"], content["to"]))
    message["Subject"] = content["subject"]
    message["Message-ID"] = make_msgid(domain=str(config["MAIL_FROM"]).rpartition("@")[2] or None)
    message.set_content(content["text"])
    with smtplib.SMTP(config["MAIL_SERVER"], int(config["MAIL_PORT"]),
                      timeout=float(config["MAIL_TIMEOUT_SECONDS"])) as server:
        if config["MAIL_STARTTLS"]:
            server.starttls(context=ssl.create_default_context())
        if config["MAIL_USERNAME"]:
            server.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        server.send_message(message)


@task(MAIL_INVITATION, retry=procrastinate.RetryStrategy(max_attempts=4, exponential_wait=30))
def mail_invitation(sealed: str, invitation_id: str, tenant_id: int | None) -> None:
    """Email one invitation, if it is still open and mail is still configured; audited."""
    if not current_app.config.get("MAIL_SERVER"):
        return
    content = json.loads(data_cipher().decrypt(sealed.encode(), ttl=SEALED_FOR_SECONDS))
    with scoped(tenant_id):
        if not _still_wanted(uuid.UUID(invitation_id), tenant_id):
            return
        deliver(content)
        record("invitation.mailed" if tenant_id is not None else "provider_invitation.mailed", actor=SYSTEM,
               tenant_id=tenant_id, object_type="invitation" if tenant_id is not None else "provider_invitation",
               object_id=invitation_id)
