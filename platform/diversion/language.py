"""The language a page is read in: English, or Welsh (Cymraeg) where a force works in both.

Chosen by the reader with the switch at the top of a page (a link to the same page with
``?lang=cy`` or ``?lang=en``), and remembered: by the browser (a cookie of its own, which
outlives signing in and out, as a session does not), and on the person's account, when they
choose while signed in or sign in after choosing, so that their next sign-in, on any device,
opens in the same language.
Before any choice, the browser's own preference (``Accept-Language``) decides, and English
when it names neither. The switch is offered on the pages anyone may read (the start and
sign-in pages) and on the pages of a force whose languages include Welsh.

Every string a person reads is marked for translation (``gettext``, ``_`` in templates)
and its Welsh kept in ``translations/cy/LC_MESSAGES/messages.po``; ``make translations``
extracts the marked strings and updates the catalogue, which ``make install`` compiles.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, Response, current_app, g, has_request_context, request
from flask_babel import Babel
from flask_login import current_user, user_logged_in
from sqlalchemy import select

from diversion.accounts.models import ProviderMembership, User
from diversion.catalogue.models import Course
from diversion.extensions import db
from diversion.forms import lazy_gettext as _l
from diversion.outage import outage_seen
from diversion.words import ENGLISH, LANGUAGES, WELSH, current_language

# Each language named in itself, as the switch shows it; and as a force's settings list it.
OWN_NAMES = {ENGLISH: "English", WELSH: "Cymraeg"}
DESCRIBED = {ENGLISH: _l("English"), WELSH: _l("Welsh (Cymraeg)")}  # in the reader's language
COOKIE = "language"
COOKIE_DAYS = 365

babel = Babel()


def chosen_language() -> str:
    """The reader's language: the one asked for now, else the one this browser chose, else the
    one their account remembers, else the best their browser asks for; English when none applies,
    and outside a request (the command line, jobs)."""
    if not has_request_context():
        return ENGLISH
    reader = _reader()
    for choice in (g.get("language_asked"), request.cookies.get(COOKIE), reader.language if reader else None):
        if choice in LANGUAGES:
            return str(choice)
    return request.accept_languages.best_match(LANGUAGES, ENGLISH)


def remember_choice() -> None:
    """A ``lang`` asked for in the address, where it is a language of the platform, becomes the
    reader's choice (a person's account keeps it, committed with the request). Anything else
    in ``lang`` is ignored: the page is shown as it would be without it."""
    asked = request.args.get("lang")
    if asked not in LANGUAGES:
        return
    g.language_asked = asked
    if (reader := _reader()) is not None:
        _keep_on_account(reader, asked)


def _reader() -> User | None:
    """The person signed in, where the database may be asked: not once it has failed in this
    request, whose error page is drawn without it (``outage``)."""
    if outage_seen() or not current_user.is_authenticated:
        return None
    return current_user  # type: ignore[no-any-return]


def _keep_on_account(user: User, language: str) -> None:
    if user.language != language:
        user.language = language
        db.session.flush()


def keep_in_browser(response: Response) -> Response:
    """The choice made in this request, kept by the browser for a year."""
    asked = g.get("language_asked")
    if asked is not None:
        response.set_cookie(COOKIE, asked, max_age=COOKIE_DAYS * 24 * 3600, httponly=True, samesite="Lax",
                            secure=bool(current_app.config["SESSION_COOKIE_SECURE"]))
    return response


def _signed_in(_app: Flask, user: User) -> None:
    """A choice made before signing in is the account's from now on."""
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        _keep_on_account(user, str(chosen))


def switch_offered() -> bool:
    """Whether the page offers the language switch: on a bilingual force's pages, as the force's
    languages say; outside any force, to anyone not signed in, to a reader reading Welsh (who may
    want English back), and to the staff of a provider that gives a course in Welsh."""
    tenant = g.get("tenant")
    if tenant is not None:
        return WELSH in tenant.languages
    reader = _reader()
    if reader is None or current_language() == WELSH:
        return True
    if "language_gives_welsh" not in g:  # asked once a page (a provider has a few courses)
        g.language_gives_welsh = any(WELSH in languages for languages in db.session.scalars(
            select(Course.languages).join(ProviderMembership, ProviderMembership.provider_id == Course.provider_id)
            .where(ProviderMembership.user_id == reader.id, Course.retired_at.is_(None))))
    return bool(g.language_gives_welsh)


def address_in(language: str) -> str:
    """This page's address, asking for it in ``language`` (its other query parameters kept)."""
    query = [(name, value) for name, value in request.args.items(multi=True) if name != "lang"]
    return f"{request.path}?{urlencode([*query, ('lang', language)])}"


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    babel.init_app(app, locale_selector=chosen_language)
    app.before_request(remember_choice)
    app.after_request(keep_in_browser)
    user_logged_in.connect(_signed_in, app)
    app.add_template_global(switch_offered, "language_switch_offered")
    app.jinja_env.globals["language_names"] = OWN_NAMES
    app.jinja_env.filters["language_name"] = lambda code: str(DESCRIBED.get(code, code))
    app.add_template_global(address_in, "address_in")
    app.add_template_global(current_language, "current_language")
