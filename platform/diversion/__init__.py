"""diversion: a multi-tenant platform for police drug-diversion schemes."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, render_template, request
from govuk_frontend_wtf.main import WTFormsHelpers
from jinja2 import ChoiceLoader, PackageLoader, PrefixLoader
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from diversion.billing.months import money, month_label
from diversion.cases.rules import outcome_named
from diversion.catalogue.vocabulary import kind_label
from diversion.config import REPO_ROOT, load_config
from diversion.db import enforce_sqlite_foreign_keys, ping_when_idle
from diversion.eligibility.fields import describe_fact, fact_label
from diversion.eligibility.models import Outcome
from diversion.errors import AccessRefused, AddressRefused
from diversion.extensions import csrf, limiter, login, migrate, talisman
from diversion.extensions import db as database  # `diversion.db` stays the module
from diversion.forms import error_summary
from diversion.forms import lazy_gettext as _l
from diversion.listing import capped_text
from diversion.web import IdConverter, refuse_control_characters_in_url
from diversion.words import article, counted, current_language, day, moment

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# Each error page's title and message, in the reader's language when shown.
ERROR_MESSAGES = {
    400: (_l("Something was wrong with that request"), _l("Go back, check what you entered and try again.")),
    403: (_l("You cannot do this"), _l("Your role does not allow this page or action.")),
    404: (_l("Page not found"), _l("Check the address, or go back to your workspace.")),
    405: (_l("That action is not allowed here"), _l("Go back and use the page's own buttons.")),
    429: (_l("Too many attempts"), _l("Wait a minute before you try again.")),
    500: (_l("Sorry, there is a problem with the service"), _l("Try again later.")),
}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application; ``config`` overrides what the environment gives."""
    settings = load_config(config)
    app = Flask(__name__, instance_path=str(settings["INSTANCE_DIR"]))
    app.config.update(settings)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        settings["INSTANCE_DIR"].mkdir(parents=True, exist_ok=True)
    if app.config["PROXY_FIX_X_FOR"]:
        n = app.config["PROXY_FIX_X_FOR"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    app.jinja_loader = ChoiceLoader([
        PackageLoader("diversion"),
        PrefixLoader({
            "govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja"),
            "govuk_frontend_wtf": PackageLoader("govuk_frontend_wtf"),
        }),
    ])
    app.jinja_env.filters["pathway_kind"] = kind_label
    # Times are stored in UTC and shown in Europe/London.
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["month_label"] = month_label
    app.jinja_env.filters["london"] = moment
    app.jinja_env.filters["day"] = day
    # Counts, articles, facts and outcomes in words, from one place each.
    app.jinja_env.filters["counted"] = counted
    app.jinja_env.filters["capped"] = capped_text
    app.jinja_env.filters["article"] = article
    app.jinja_env.filters["fact_label"] = fact_label
    app.jinja_env.filters["fact_value"] = lambda value, name: describe_fact(name, value)
    app.jinja_env.filters["outcome_label"] = lambda value: Outcome(value).label if value else ""
    # A referral's outcome as its force names it, in the reader's language.
    app.jinja_env.filters["outcome_named"] = lambda label, code, tenant: outcome_named(label, code, tenant,
                                                                                        current_language())
    WTFormsHelpers(app)
    # The same helper, with error-summary links that reach date inputs.
    app.add_template_global(error_summary, "wtforms_errors")
    # Force pages render inside their force: every template can see which.
    app.context_processor(lambda: {"tenant": g.get("tenant")})

    _init_extensions(app)
    # Before any route is added, so that every <int:...> in an address is bounded.
    app.url_map.converters["int"] = IdConverter
    _register_blueprints(app)
    _register_errors(app)

    from diversion import jobs
    from diversion.cli import register
    from diversion.providers import webhooks  # noqa: F401 - declares its jobs

    jobs.init_app(app)
    register(app)
    return app


def _init_extensions(app: Flask) -> None:
    import diversion.models  # noqa: F401 - every table, so foreign keys between features resolve
    from diversion import language, outage, unit
    from diversion.tenancy import bulk, guard, rls
    from diversion.tenancy.context import clear_scope, set_scope
    from diversion.web import forbid_storing

    database.init_app(app)
    migrate.init_app(app, database, directory=str(REPO_ROOT / "migrations"))
    language.init_app(app)
    login.init_app(app)
    login.login_view = "accounts.sign_in"
    login.login_message = "Sign in to see that page."
    login.login_message_category = "info"
    csrf.init_app(app)
    limiter.init_app(app)
    talisman.init_app(
        app,
        force_https=False,  # TLS ends at the proxy; HSTS tells browsers to stay on it
        strict_transport_security=app.config["HSTS"],
        content_security_policy=CONTENT_SECURITY_POLICY,
        content_security_policy_nonce_in=["style-src"],
        frame_options="DENY",
        session_cookie_secure=app.config["SESSION_COOKIE_SECURE"],
        session_cookie_http_only=True,
        referrer_policy="same-origin",
    )
    bulk.install()  # first: its rows go before the statement the guard then filters
    guard.install()
    rls.install()
    enforce_sqlite_foreign_keys()
    with app.app_context():
        ping_when_idle(database.engine, app.config["DATABASE_PING_AFTER_SECONDS"])
    outage.install(app)
    app.after_request(forbid_storing)  # no answer but a static asset is stored (see there why)

    app.url_value_preprocessor(refuse_control_characters_in_url)

    # Scope is per unit of work: cleared before the URL is read and after it ends.
    @app.url_value_preprocessor
    def _clear_scope(_endpoint: str | None, _values: dict[str, Any] | None) -> None:
        set_scope(None, None)

    # Last of the after_request functions, so it runs first: see unit.install.
    unit.install(app)

    @app.teardown_request
    def _end_scope(_error: BaseException | None) -> None:
        clear_scope()  # no database write here: see clear_scope


def _register_blueprints(app: Flask) -> None:
    import diversion.billing.ledger  # listens to referral moves (cases.events), as do the two below
    import diversion.insights.services
    import diversion.providers.feed  # noqa: F401 - listens to referral moves (cases.events)
    from diversion.accounts.invitation_views import bp as invitations_bp
    from diversion.accounts.invitation_views import provider_bp as provider_invitations_bp
    from diversion.accounts.sso_views import bp as sso_bp
    from diversion.accounts.views import bp as accounts_bp
    from diversion.accounts.views import members_bp, register_membership_check
    from diversion.admin.console import bp as console_bp
    from diversion.admin.onboarding import bp as onboarding_bp
    from diversion.admin.people import bp as admin_people_bp
    from diversion.admin.views import bp as admin_bp
    from diversion.api.pages import bp as api_tokens_bp
    from diversion.api.views import bp as api_bp
    from diversion.billing.close_pages import bp as billing_close_bp
    from diversion.billing.contract_pages import admin_bp as contracts_admin_bp
    from diversion.billing.contract_pages import force_bp as force_contracts_bp
    from diversion.billing.contract_pages import provider_bp as provider_contracts_bp
    from diversion.billing.payout_pages import bp as billing_payouts_bp
    from diversion.billing.reconcile_pages import bp as billing_reconciliation_bp
    from diversion.billing.statement_pages import admin_bp as admin_billing_bp
    from diversion.billing.statement_pages import force_bp as force_billing_bp
    from diversion.billing.statement_pages import provider_bp as provider_billing_bp
    from diversion.billing.webhooks import bp as billing_webhooks_bp
    from diversion.cases.home import bp as force_bp
    from diversion.cases.lists import bp as case_list_bp
    from diversion.cases.views import bp as cases_bp
    from diversion.catalogue.services import read_pathways_with
    from diversion.catalogue.views import admin_bp as catalogue_admin_bp
    from diversion.catalogue.views import offerings_bp
    from diversion.eligibility.services import pathways_in_force
    from diversion.eligibility.views import bp as policy_bp
    from diversion.forces.views import audit_bp as force_audit_bp
    from diversion.forces.views import settings_bp
    from diversion.insights.views import force_bp as force_insights_bp
    from diversion.insights.views import national_bp
    from diversion.providers.api import bp as provider_api_bp
    from diversion.providers.pages import bp as provider_integrations_bp
    from diversion.providers.people import bp as provider_people_bp
    from diversion.providers.views import bp as provider_bp
    from diversion.public.views import bp as public_bp

    for blueprint in (public_bp, accounts_bp, admin_bp, members_bp, policy_bp, cases_bp, force_bp, api_bp,
                      api_tokens_bp, provider_bp, provider_api_bp, provider_integrations_bp, catalogue_admin_bp,
                      offerings_bp, invitations_bp, provider_invitations_bp, provider_people_bp, admin_people_bp,
                      console_bp, settings_bp, force_audit_bp, sso_bp, onboarding_bp, national_bp, force_insights_bp):
        app.register_blueprint(blueprint)
    for blueprint in (force_billing_bp, provider_billing_bp, admin_billing_bp, contracts_admin_bp, force_contracts_bp,
                      provider_contracts_bp, billing_close_bp, billing_payouts_bp, billing_reconciliation_bp,
                      billing_webhooks_bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(case_list_bp)
    read_pathways_with(pathways_in_force)  # offerings serve pathways; eligibility owns them
    register_membership_check(app)  # the force pages ask accounts who is a member


def _register_errors(app: Flask) -> None:
    from diversion import outage

    def render_error(error: Exception) -> tuple[str, int] | Response:
        api = request.path.startswith("/api/")  # the API answers in JSON, even for a URL it lacks
        if outage.is_outage(error):  # the database, not the code: 503, try again
            app.logger.warning("The database cannot answer (503): %s", error)  # an outage, not a bug: no traceback
            outage.safe_rollback()
            if api:
                from diversion.jsonapi.http import unavailable

                return unavailable()
            return outage.unavailable_page()
        code = error.code if isinstance(error, HTTPException) and error.code else 500
        if code >= 500:
            app.logger.exception("Unhandled error", exc_info=error)
            outage.safe_rollback()
        if api:
            from diversion.jsonapi.http import http_error

            return http_error(error, code)
        title, message = map(str, ERROR_MESSAGES.get(code, ERROR_MESSAGES[500 if code >= 500 else 400]))
        if isinstance(error, AddressRefused | AccessRefused):
            message = str(error.description)
        if code >= 500:
            message = f"{message} {outage.changes_note()}"
        try:
            return render_template("errors/error.html", title=title, message=message), code
        except Exception as failure:  # e.g. the user loader, once the database is gone
            app.logger.warning("The error page failed: %s", failure, exc_info=failure)
            outage.safe_rollback()
            if outage.is_outage(failure):
                return outage.unavailable_page()
            return outage.safe_page(title, message, code)

    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(Exception, render_error)
