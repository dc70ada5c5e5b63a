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
