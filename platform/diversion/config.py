"""Configuration read from the environment.

``DIVERSION_ENV`` picks the profile: ``development`` (``make run``), ``test``
(the suite) or ``production`` (the default, so a forgotten variable fails
safe). Outside development and test a real ``SECRET_KEY`` is required.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("development", "test", "production")
# Placeholder keys that must never sign a production session.
WEAK_SECRET_KEYS = frozenset({"", "dev", "development", "secret", "changeme", "test"})
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(RuntimeError):
    """Raised when the environment cannot produce a safe configuration."""


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the Flask configuration from the environment and ``overrides``.

    Refuses (``ConfigError``) an unknown ``DIVERSION_ENV`` and, outside
    development and test, a missing, placeholder or short ``SECRET_KEY``.
    """
    overrides = dict(overrides or {})
    env_name = str(overrides.pop("ENV_NAME", os.environ.get("DIVERSION_ENV", "production")))
    if env_name not in ENVIRONMENTS:
        raise ConfigError(
            f"DIVERSION_ENV={env_name!r} is not one of {', '.join(ENVIRONMENTS)}."
        )
    relaxed = env_name in ("development", "test")
    instance = Path(os.environ.get("DIVERSION_INSTANCE_DIR", REPO_ROOT / "instance"))
    database_url = os.environ.get("DATABASE_URL", f"sqlite:///{instance / 'diversion.db'}")

    config: dict[str, Any] = {
        "ENV_NAME": env_name,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "dev-only-not-secret" if relaxed else ""),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "DATABASE_OWNER_URL": os.environ.get("DATABASE_OWNER_URL", ""),
        # Seconds to wait for a connection (the server, then the pool) before answering 503.
        "DATABASE_CONNECT_TIMEOUT": int(os.environ.get("DATABASE_CONNECT_TIMEOUT", "5")),
        "DATABASE_POOL_TIMEOUT": float(os.environ.get("DATABASE_POOL_TIMEOUT", "10")),
        # A pooled connection idle this many seconds is checked before use (``db.ping_when_idle``).
        "DATABASE_PING_AFTER_SECONDS": float(os.environ.get("DATABASE_PING_AFTER_SECONDS", "10")),
        # What a 503 (the database not answering) tells clients to wait, in seconds.
        "RETRY_AFTER_SECONDS": int(os.environ.get("RETRY_AFTER_SECONDS", "30")),
        "TENANTS_DIR": Path(os.environ.get("DIVERSION_TENANTS_DIR", REPO_ROOT / "tenants")),
        "INSTANCE_DIR": instance,
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        # Failed sign-ins allowed per client address, and per account (successes never count).
        "SIGN_IN_RATE_LIMIT": os.environ.get("SIGN_IN_RATE_LIMIT", "10 per minute"),
        "SIGN_IN_ACCOUNT_RATE_LIMIT": os.environ.get("SIGN_IN_ACCOUNT_RATE_LIMIT", "5 per minute"),
        "PROXY_FIX_X_FOR": int(os.environ.get("PROXY_FIX_X_FOR", "0")),
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_NAME": "diversion_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": not relaxed,
        "REMEMBER_COOKIE_DURATION": 60 * 60 * 12,
        "REMEMBER_COOKIE_SECURE": not relaxed,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": 60 * 60 * 12,
        "HSTS": not relaxed,
        "PASSWORD_HASHING": "standard",
        # Comma-separated Fernet keys: the first encrypts, all decrypt (rotation).
        "PERSONAL_DATA_KEYS": os.environ.get("PERSONAL_DATA_KEYS", ""),
        # Master secret from which each force's person-key secret is derived.
        "PERSON_KEY_SECRET": os.environ.get("PERSON_KEY_SECRET", ""),
        # Providers' webhooks (diversion.providers.webhooks). Plain-http endpoints
        # only for trying things out locally, never in production.
        "WEBHOOK_ALLOW_HTTP": relaxed and os.environ.get("WEBHOOK_ALLOW_HTTP", "") == "1",
        "WEBHOOK_MAX_ATTEMPTS": int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", "8")),
        "WEBHOOK_BACKOFF_SECONDS": float(os.environ.get("WEBHOOK_BACKOFF_SECONDS", "30")),
        "WEBHOOK_BACKOFF_CAP_SECONDS": float(os.environ.get("WEBHOOK_BACKOFF_CAP_SECONDS", str(6 * 3600))),
        "WEBHOOK_TIMEOUT_SECONDS": float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10")),
        # Forces' single sign-on (diversion.accounts.sso): plain-http identity providers
        # only for trying things out locally, never in production; how long one call may take.
        "SSO_ALLOW_HTTP": relaxed and os.environ.get("SSO_ALLOW_HTTP", "") == "1",
        "SSO_TIMEOUT_SECONDS": float(os.environ.get("SSO_TIMEOUT_SECONDS", "10")),
        # Background jobs (diversion.jobs): the longest a worker waits before it looks
        # for jobs again (on PostgreSQL it is woken at once when one is queued).
        "JOBS_POLL_SECONDS": float(os.environ.get("JOBS_POLL_SECONDS", "5")),
        # How long a finished job's run is kept in job_runs before the nightly job forgets it.
        "JOBS_KEEP_DAYS": int(os.environ.get("JOBS_KEEP_DAYS", "14")),
        # A simulation over more past decisions than this runs as a job, its progress on the page;
        # a smaller one runs while the page waits.
        "SIMULATION_JOB_THRESHOLD": int(os.environ.get("SIMULATION_JOB_THRESHOLD", "100000")),
        # Outward calls (diversion.outbound): the ports they may use, and hosts exempt from
        # the address and port rules: a local receiver in development only; the test list
        # is set by the tests themselves, never from the environment.
        "OUTBOUND_ALLOWED_PORTS": _ports(os.environ.get("OUTBOUND_ALLOWED_PORTS", "443")),
        "OUTBOUND_DEV_ALLOW_HOSTS": _hosts(os.environ.get("OUTBOUND_DEV_ALLOW_HOSTS", "")),
        "OUTBOUND_TEST_ALLOW_HOSTS": (),
        # Invitations by email (diversion.accounts.mail): off unless MAIL_SERVER is set.
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", ""),
        "MAIL_PORT": int(os.environ.get("MAIL_PORT", "25")),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "diversion <no-reply@localhost>"),
        "MAIL_STARTTLS": os.environ.get("MAIL_STARTTLS", "") == "1",
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD", ""),
        "MAIL_TIMEOUT_SECONDS": float(os.environ.get("MAIL_TIMEOUT_SECONDS", "10")),
        # Billing through Stripe (diversion.billing): invoices are not sent unless
        # STRIPE_SECRET_KEY is set. STRIPE_API_BASE points the SDK at another server (the
        # local Stripe server of the tests and of `make run`): development and test only.
        "STRIPE_SECRET_KEY": os.environ.get("STRIPE_SECRET_KEY", ""),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE", "") if relaxed else "",
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET", ""),
        # How far from now (either way) a webhook's signed timestamp may be.
        "STRIPE_WEBHOOK_TOLERANCE_SECONDS": int(os.environ.get("STRIPE_WEBHOOK_TOLERANCE_SECONDS", "300")),
        "STRIPE_TIMEOUT_SECONDS": float(os.environ.get("STRIPE_TIMEOUT_SECONDS", "30")),
        # How often the SDK tries a request again after a network failure (with the same idempotency key).
        "STRIPE_NETWORK_RETRIES": int(os.environ.get("STRIPE_NETWORK_RETRIES", "2")),
        # Days a force has to pay an invoice once it is sent.
        "BILLING_DAYS_UNTIL_DUE": int(os.environ.get("BILLING_DAYS_UNTIL_DUE", "30")),
        # The trust (an ssl.SSLContext) webhook jobs use instead of the system's: set by
        # the test suite only, so that a job can reach its local TLS listener.
        "WEBHOOK_TEST_TRUST": None,
    }
    config.update(overrides)
    config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", _engine_options(config))
    _refuse_allow_lists_outside_their_profile(config, env_name)
    if not relaxed:
        _refuse_weak_secret(str(config["SECRET_KEY"]))
        for name in ("PERSONAL_DATA_KEYS", "PERSON_KEY_SECRET"):
            if not config[name]:
                raise ConfigError(f"{name} must be set outside development and test.")
    else:
        # Development and tests derive both from the secret key: never production.
        from diversion.cases.identity import derived_key

        config["PERSONAL_DATA_KEYS"] = config["PERSONAL_DATA_KEYS"] or derived_key(str(config["SECRET_KEY"]))
        config["PERSON_KEY_SECRET"] = config["PERSON_KEY_SECRET"] or f"person-keys:{config['SECRET_KEY']}"
    _insights_login(config, relaxed=relaxed)
    return config


def _insights_login(config: dict[str, Any], *, relaxed: bool) -> None:
    """The national pages' own database login (``INSIGHTS_DATABASE_URL``, a bind named
    ``insights``), which may read the aggregate tables alone. On a laptop and in tests it
    defaults to the app's database; on PostgreSQL outside them it must be given."""
    url = config.get("INSIGHTS_DATABASE_URL") or os.environ.get("INSIGHTS_DATABASE_URL", "")
    main = str(config["SQLALCHEMY_DATABASE_URI"])
    if not url:
        if main.startswith("postgresql") and not relaxed:
            raise ConfigError("INSIGHTS_DATABASE_URL must be set: the national pages read aggregates through a "
                              "login of their own (infra/postgres/roles.sql makes diversion_insights).")
        url = main
    config["INSIGHTS_DATABASE_URL"] = url
    config.setdefault("SQLALCHEMY_BINDS", {"insights": {"url": url, **_engine_options(
        {**config, "SQLALCHEMY_DATABASE_URI": url})}})


def _engine_options(config: dict[str, Any]) -> dict[str, Any]:
    """Waits for a connection are bounded, so that an unreachable database gets a quick 503 rather
    than requests piling up. (Pooled connections idle a while are checked before use:
    ``db.ping_when_idle``, installed with the app.)

    PostgreSQL's JIT compilation is off for the app's connections: its statements are short, but the
    planner counts row-level security's subqueries in their cost, which passes ``jit_above_cost`` once
    a force has some thousands of referrals, and a 10 ms list then spent 30-40 ms compiling."""
    options: dict[str, Any] = {}
    if str(config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql"):
        options["pool_timeout"] = config["DATABASE_POOL_TIMEOUT"]
        options["connect_args"] = {"connect_timeout": config["DATABASE_CONNECT_TIMEOUT"], "options": "-c jit=off"}
    return options


def _ports(value: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(item) for item in value.replace(",", " ").split())
    except ValueError:
        ports = ()
    if not ports or any(not 0 < port < 65536 for port in ports):
        raise ConfigError(f"OUTBOUND_ALLOWED_PORTS={value!r} must list port numbers (1-65535), e.g. 443,8443.")
    return ports


def _hosts(value: str) -> tuple[str, ...]:
    return tuple(item for item in value.replace(",", " ").split() if item)


def _refuse_allow_lists_outside_their_profile(config: dict[str, Any], env_name: str) -> None:
    """An allow-list opens the platform's own network to outward calls: the
    development one never outside development, the test one never outside tests."""
    if config["OUTBOUND_DEV_ALLOW_HOSTS"] and env_name == "production":
        raise ConfigError("OUTBOUND_DEV_ALLOW_HOSTS is for development only: unset it in production.")
    if env_name != "development":
        config["OUTBOUND_DEV_ALLOW_HOSTS"] = ()
    if config["OUTBOUND_TEST_ALLOW_HOSTS"] and env_name != "test":
        raise ConfigError("OUTBOUND_TEST_ALLOW_HOSTS is for the test suite only.")
    if config["WEBHOOK_TEST_TRUST"] is not None and env_name != "test":
        raise ConfigError("WEBHOOK_TEST_TRUST is for the test suite only.")


def _refuse_weak_secret(secret: str) -> None:
    if secret.lower() in WEAK_SECRET_KEYS or len(secret) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            "SECRET_KEY must be set to a random value of at least "
            f"{MIN_SECRET_KEY_LENGTH} characters outside development and test "
            '(for example: python -c "import secrets; print(secrets.token_urlsafe(48))").'
        )
