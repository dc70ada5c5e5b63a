"""Invitations by email, through a real SMTP server (aiosmtpd) on 127.0.0.1.

When ``MAIL_SERVER`` is set, an invitation is mailed by a job queued once the
change commits; the queue never holds the link in the clear; an invitation
withdrawn before the job runs is not mailed; without ``MAIL_SERVER`` nothing
is queued and the link is only shown to the inviter.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from diversion import jobs
from diversion.accounts.invitations import ForceInvitation, ProviderInvitation
from diversion.accounts.mail import MAIL_INVITATION
from diversion.audit.models import AuditEvent
from diversion.extensions import db
from diversion.tenancy.context import scoped
from tests.conftest import World, csrf_token, post_form, sign_in

NEWCOMER = "newcomer@example.org"
LINK = re.compile(r'data-testid="invitation-link">([^<]+)<')


class Inbox:
    """What the SMTP server was sent."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, EmailMessage]] = []

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's name
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def inbox(app: Flask) -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1, and the app told to send through it."""
    received = Inbox()
    controller = Controller(received, hostname="127.0.0.1", port=_free_port())
    controller.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port,
                      MAIL_FROM="diversion <no-reply@diversion.example>")
    yield received
    controller.stop()


def _queued(app: Flask) -> list[dict[str, Any]]:
    """The arguments of every invitation email waiting in the job queue."""
    connector = jobs.queue_of(app).connector
    if jobs.in_memory(app):
        return [dict(job["args"]) for job in connector.jobs.values()  # type: ignore[attr-defined]
                if job["task_name"] == MAIL_INVITATION and job["status"] == "todo"]
    with app.app_context(), db.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT args FROM procrastinate.procrastinate_jobs WHERE task_name = :task AND status = 'todo'"),
            {"task": MAIL_INVITATION}).all()
        return [dict(row[0]) for row in rows]


def _invite(client: FlaskClient, world: World, email: str = NEWCOMER) -> Any:
    sign_in(client, world.email("a_force_admin"))
    return post_form(client, "/west-midlands/members/invite", "/west-midlands/members/invite",
                     {"name": "New Comer", "email": email, "role": "officer"})


def test_an_invitation_is_mailed_by_a_job_after_the_commit(app: Flask, client: FlaskClient, world: World,
                                                           inbox: Inbox) -> None:
    page = _invite(client, world)
    assert page.status_code == 200
    assert f"We are emailing the link to {NEWCOMER}" in page.text
    match = LINK.search(page.text)
    assert match is not None
    link = match.group(1)
    token = link.rsplit("/", 1)[1]
    assert link.startswith("http://localhost/west-midlands/invitation/")
    # Queued, sealed: the job's arguments never hold the link in the clear.
    queued = _queued(app)
    assert len(queued) == 1
    assert token not in json.dumps(queued)
    assert NEWCOMER not in json.dumps(queued)
    assert inbox.messages == []
    jobs.work_now(app)
    assert len(inbox.messages) == 1
    envelope, message = inbox.messages[0]
    assert envelope.rcpt_tos == [NEWCOMER]
    assert envelope.mail_from == "no-reply@diversion.example"
    assert message["To"] == f"New Comer <{NEWCOMER}>"
    assert message["Subject"] == "You are invited to join West Midlands Police on diversion"
    body = message.get_content()
    assert link in body
    assert "as an officer" in body
    assert "works once" in body
    assert _queued(app) == []
    with app.app_context(), scoped(world.a.id):
        mailed = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "invitation.mailed"))
        assert mailed is not None
        assert mailed.tenant_id == world.a.id
    # The link in the email works: a new account, signed in, in the force.
    newcomer = app.test_client()
    form = newcomer.get(link.removeprefix("http://localhost"))
    assert form.status_code == 200
    done = newcomer.post(link.removeprefix("http://localhost"), data={
        "name": "New Comer", "password": "a-long-enough-password", "confirm": "a-long-enough-password",
        "csrf_token": csrf_token(form.text)})
    assert done.status_code == 302
    assert newcomer.get("/west-midlands/").status_code == 200


def test_an_invitation_withdrawn_before_the_job_runs_is_not_mailed(app: Flask, client: FlaskClient, world: World,
                                                                   inbox: Inbox) -> None:
    assert _invite(client, world).status_code == 200
    with app.app_context(), scoped(world.a.id):
        invitation = db.session.scalar(select(ForceInvitation))
        assert invitation is not None
        invitation_id = invitation.id
    response = post_form(client, "/west-midlands/members/",
                         f"/west-midlands/members/invitations/{invitation_id}/withdraw")
    assert response.status_code == 302
    jobs.work_now(app)
    assert inbox.messages == []


def test_a_refused_invitation_queues_nothing(app: Flask, client: FlaskClient, world: World, inbox: Inbox) -> None:
    response = _invite(client, world, email=world.email("a_officer"))  # already an officer there
    assert response.status_code == 400
    assert "already an officer" in response.text
    assert _queued(app) == []


def test_a_provider_invitation_is_mailed_too(app: Flask, client: FlaskClient, world: World, inbox: Inbox) -> None:
    sign_in(client, world.email("platform_admin"))
    page = post_form(client, "/admin/people/invite", "/admin/people/invite",
                     {"organisation": "provider:druglink", "name": "New Comer", "email": NEWCOMER})
    assert page.status_code == 200
    match = LINK.search(page.text)
    assert match is not None
    jobs.work_now(app)
    assert len(inbox.messages) == 1
    _envelope, message = inbox.messages[0]
    assert message["Subject"] == "You are invited to join Druglink on diversion"
    assert match.group(1) in message.get_content()
    assert "as an admin" in message.get_content()
    with app.app_context():
        assert db.session.scalar(select(ProviderInvitation)) is not None


def test_without_a_mail_server_nothing_is_queued(app: Flask, client: FlaskClient, world: World) -> None:
    assert not app.config["MAIL_SERVER"]
    page = _invite(client, world)
    assert page.status_code == 200
    assert "Give this link to New Comer" in page.text
    assert _queued(app) == []
