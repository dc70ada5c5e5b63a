"""Configuration: safe by default, refusing to start without a real secret."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from diversion import create_app
from diversion.config import ConfigError, load_config


@pytest.mark.parametrize("secret", [None, "", "dev", "changeme", "short-but-not-weak"])
def test_production_refuses_a_missing_or_weak_secret_key(monkeypatch, secret) -> None:
    monkeypatch.setenv("DIVERSION_ENV", "production")
    if secret is None:
        monkeypatch.delenv("SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("SECRET_KEY", secret)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_unset_environment_means_production(monkeypatch) -> None:
    monkeypatch.delenv("DIVERSION_ENV", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError):
        load_config()


def test_unknown_environment_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("DIVERSION_ENV", "staging")
    with pytest.raises(ConfigError, match="staging"):
        load_config()


def test_development_starts_without_a_secret(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DIVERSION_ENV", "development")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DIVERSION_INSTANCE_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = load_config()
    assert config["SECRET_KEY"]
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'diversion.db'}"
    assert config["SESSION_COOKIE_SECURE"] is False


def test_production_takes_database_and_limits_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DIVERSION_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://app@db/diversion")
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://redis:6379/0")
    with pytest.raises(ConfigError, match="PERSONAL_DATA_KEYS"):
        load_config()
    monkeypatch.setenv("PERSONAL_DATA_KEYS", Fernet.generate_key().decode())
    with pytest.raises(ConfigError, match="PERSON_KEY_SECRET"):
        load_config()
    monkeypatch.setenv("PERSON_KEY_SECRET", "p" * 40)
    with pytest.raises(ConfigError, match="INSIGHTS_DATABASE_URL"):
        load_config()
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", "postgresql+psycopg://insights@db/diversion")
    config = load_config()
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://app@db/diversion"
    assert config["SQLALCHEMY_BINDS"]["insights"]["url"] == "postgresql+psycopg://insights@db/diversion"
    assert config["RATELIMIT_STORAGE_URI"] == "redis://redis:6379/0"
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["HSTS"] is True
