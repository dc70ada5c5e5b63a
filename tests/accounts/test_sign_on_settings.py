"""A force's single sign-on settings: saved with the secret sealed, refused when wrong, audited."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from diversion.accounts import sso
from diversion.accounts.access import SYSTEM
from diversion.accounts.models import User
from diversion.audit.models import AuditEvent
from diversion.errors import AccessRefused
from diversion.extensions import db
from diversion.sealing import seal_text
from diversion.tenancy.context import scoped
from diversion.tenancy.models import Tenant
from tests.conftest import World

ISSUER = "https://example.org/force-a/v2.0"


def _tenant(ref_id: int) -> Tenant:
    tenant = db.session.get(Tenant, ref_id)
    assert tenant is not None
    return tenant


def _configure(tenant: Tenant, **changes: object) -> sso.ForceSignOn:
    settings: dict[str, object] = {"issuer": ISSUER, "client_id": "platform-app", "client_secret": "s3cret-value",
                                   "compulsory": False, "new_people": "refuse", **changes}
    return sso.configure_sign_on(tenant, actor=SYSTEM, **settings)  # type: ignore[arg-type]


def test_settings_are_saved_with_the_secret_sealed_and_audited(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        tenant = _tenant(world.a.id)
        assert sso.sign_on_of(tenant) is None
        sign_on = _configure(tenant, new_people="officer", compulsory=True)
        db.session.commit()
        found = sso.sign_on_of(tenant)
        assert found is sign_on
        assert (found.issuer, found.client_id, found.compulsory, found.new_people) == (
            ISSUER, "platform-app", True, "officer")
        assert "s3cret-value" not in found.client_secret_sealed
        assert sso.client_secret(found) == "s3cret-value"
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "sign_on.configured")).one()
        assert event.tenant_id == world.a.id
        assert "s3cret-value" not in str(event.details)
        # No secret: the sealed one stays.
        _configure(tenant, client_secret=None, client_id="renamed-app")
        assert sso.client_secret(found) == "s3cret-value"
        assert found.client_id == "renamed-app"
        _configure(tenant, client_secret="  another  ")
        assert sso.client_secret(found) == "another"
    with app.app_context(), scoped(world.b.id):
        assert sso.sign_on_of(_tenant(world.b.id)) is None  # force B sees nothing of A's


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"issuer": " "}, "issuer", "Enter the issuer"),
    ({"issuer": "http://example.org/"}, "issuer", "https://"),
    ({"issuer": "https://127.0.0.1/tenant"}, "issuer", "not on the public internet"),
    ({"issuer": "https://169.254.169.254/latest"}, "issuer", "not on the public internet"),
    ({"issuer": "https://unknown.invalid/"}, "issuer", "public internet"),
    ({"issuer": "https://example.org/?x=1"}, "issuer", "?query"),
    ({"client_id": ""}, "client_id", "Enter the client ID"),
    ({"client_id": "x" * 256}, "client_id", "255 characters"),
    ({"client_secret": None}, "client_secret", "Enter the client secret"),
    ({"new_people": "force_admin"}, "new_people", "Choose what happens"),
    ({"new_people": "anything"}, "new_people", "Choose what happens"),
])
def test_bad_settings_are_refused_naming_the_field(app: Flask, world: World, changes: dict[str, object],
                                                   field: str, words: str) -> None:
    with app.app_context(), scoped(world.a.id):
        tenant = _tenant(world.a.id)
        with pytest.raises(sso.SignOnError) as refused:
            _configure(tenant, **changes)
        assert refused.value.field == field
        assert words in refused.value.message
        db.session.rollback()
        assert sso.sign_on_of(tenant) is None


def test_only_the_forces_admin_a_platform_admin_or_the_platform_may_change_it(app: Flask, world: World) -> None:
    with app.app_context(), scoped(world.a.id):
        tenant = _tenant(world.a.id)
        for key in ("a_officer", "a_supervisor", "b_force_admin", "national_lead", "provider_staff"):
            user = db.session.get(User, world.users[key].id)
            with pytest.raises(AccessRefused):
                sso.configure_sign_on(tenant, issuer=ISSUER, client_id="x", client_secret="y", compulsory=False,
                                      new_people="refuse", actor=user)
        assert sso.sign_on_of(tenant) is None
        for key in ("a_force_admin", "platform_admin"):
            user = db.session.get(User, world.users[key].id)
            sso.configure_sign_on(tenant, issuer=ISSUER, client_id=key, client_secret="y", compulsory=False,
                                  new_people="refuse", actor=user)
            found = sso.sign_on_of(tenant)
            assert found is not None
            assert found.client_id == key


def test_the_form_carries_the_services_arguments_and_never_the_secret(app: Flask, world: World) -> None:
    with app.test_request_context(), scoped(world.a.id):
        app.config["WTF_CSRF_ENABLED"] = False
        form = sso.SignOnForm(formdata=MultiDict({"issuer": ISSUER, "client_id": "app", "client_secret": "shh",
                                                  "compulsory": "y", "new_people": "supervisor"}))
        assert form.validate()
        assert form.settings() == {"issuer": ISSUER, "client_id": "app", "client_secret": "shh",
                                   "compulsory": True, "new_people": "supervisor"}
        tenant = _tenant(world.a.id)
        sign_on = sso.configure_sign_on(tenant, actor=SYSTEM, **form.settings())
        shown = sso.SignOnForm.of(sign_on, formdata=None)
        assert shown.issuer.data == ISSUER
        assert shown.new_people.data == "supervisor"
        assert not shown.client_secret.data
        assert "shh" not in shown.client_secret()
        blank = sso.SignOnForm(formdata=MultiDict({"issuer": "", "client_id": "", "new_people": "refuse"}))
        assert not blank.validate()
        assert set(blank.errors) == {"issuer", "client_id"}
        kept = sso.SignOnForm(formdata=MultiDict({"issuer": ISSUER, "client_id": "app", "new_people": "refuse"}))
        assert kept.validate()
        assert kept.settings()["client_secret"] is None


def test_the_force_admins_page_saves_refuses_in_place_and_never_shows_the_secret(
    app: Flask, world: World,
) -> None:
    from tests.conftest import csrf_token, sign_in

    client = app.test_client()
    sign_in(client, world.email("a_force_admin"))
    page = client.get("/west-midlands/settings/sign-on")
    assert page.status_code == 200
    assert "Set up single sign-on" in page.text
    assert "http://localhost/west-midlands/sign-in/sso/callback" in page.text  # to register at the provider
    assert "keep the one already saved" not in page.text  # none is saved
    token = csrf_token(page.text)
    bad = client.post("/west-midlands/settings/sign-on", data={
        "csrf_token": token, "issuer": "https://127.0.0.1/idp", "client_id": "app", "client_secret": "kept-secret",
        "new_people": "officer"})
    assert bad.status_code == 400
    assert "govuk-error-summary" in bad.text
    assert 'href="#issuer"' in bad.text
    assert "not on the public internet" in bad.text
    assert "kept-secret" not in bad.text
    with app.app_context(), scoped(world.a.id):
        assert sso.sign_on_of(_tenant(world.a.id)) is None
    saved = client.post("/west-midlands/settings/sign-on", data={
        "csrf_token": token, "issuer": ISSUER, "client_id": "app", "client_secret": "kept-secret",
        "new_people": "officer", "compulsory": "y"})
    assert saved.status_code == 302
    shown = client.get("/west-midlands/settings/sign-on").text
    assert "The sign-on settings are saved" in shown
    assert ISSUER in shown
    assert "kept-secret" not in shown
    assert "Saved, kept encrypted" in shown
    assert "keep the one already saved" in shown
    # Saved again without a secret: the kept one stays.
    again = client.post("/west-midlands/settings/sign-on", data={
        "csrf_token": token, "issuer": ISSUER, "client_id": "app-2", "new_people": "refuse"})
    assert again.status_code == 302
    with app.app_context(), scoped(world.a.id):
        sign_on = sso.sign_on_of(_tenant(world.a.id))
        assert sign_on is not None
        assert (sign_on.client_id, sign_on.compulsory, sign_on.new_people) == ("app-2", False, "refuse")
        assert sso.client_secret(sign_on) == "kept-secret"
    officer = app.test_client()
    sign_in(officer, world.email("a_officer"))
    assert officer.get("/west-midlands/settings/sign-on").status_code == 403


def test_settings_written_back_without_a_secret_wait_for_one(app: Flask, world: World) -> None:
    """An export carries no secret: written back, the settings are kept, but no one signs in
    through them (nor are passwords refused) until an admin enters the secret."""
    with app.app_context(), scoped(world.a.id):
        tenant = _tenant(world.a.id)
        sign_on = _configure(tenant, client_secret=None, compulsory=True, secret_required=False)
        assert not sign_on.has_secret
        sign_on.client_secret_sealed = seal_text("")  # as the force files' sync keeps none
        assert not sign_on.has_secret
        db.session.commit()
        assert tenant not in sso.forces_signing_on()
        officer = db.session.get(User, world.users["a_officer"].id)
        assert officer is not None
        assert sso.compulsory_forces(officer) == []
        _configure(tenant, client_secret=None, client_id="changed")  # still waiting for its secret
        assert not sign_on.has_secret
        _configure(tenant, client_secret="now-entered", compulsory=True)
        assert sso.client_secret(sign_on) == "now-entered"
        assert [t.slug for t in sso.forces_signing_on()] == [world.a.slug]
        assert [t.slug for t in sso.compulsory_forces(officer)] == [world.a.slug]
