"""Languages: which one a request is served in, and rendering for a person in their own.

A request's language is, in order: a choice made on the page (`?lang=fr`, remembered in a cookie),
the registration's stored language on its own pages, the cookie, the browser's Accept-Language,
then the convening's default. Only the languages the convening enabled are ever chosen (all of
LANGUAGES outside a convening).

The back office (the `admin` blueprint, and the staff-only emails and PDFs) has its own catalogue,
the `admin` domain (convene/translations/<lang>/LC_MESSAGES/admin.po, template admin.pot). Its
requests read the `admin` catalogue over `messages`, and are served in one of BACK_OFFICE_LANGUAGES
(the cookie or the browser's choice among them), English unless a deployment lists more.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.numbers import format_currency as babel_format_currency
from babel.numbers import format_decimal as babel_format_decimal
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, Domain, force_locale, get_locale, refresh
from werkzeug.routing import BuildError

from convene.languages import DEFAULT_LANGUAGE, LANGUAGES, RTL_LANGUAGES

COOKIE = "convene_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

babel = Babel()
BACK_OFFICE_DOMAIN = "admin"


def enabled_languages(convening=None) -> list[str]:
    """The codes a convening's pages can be read in, default first; every language outside a convening."""
    if convening is None:
        return list(LANGUAGES)
    codes = [code for code in (getattr(convening, "languages", None) or []) if code in LANGUAGES]
    default = default_language(convening)
    return [default] + [code for code in codes if code != default]


def default_language(convening=None) -> str:
    code = getattr(convening, "default_language", None) if convening is not None else None
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def valid_language(code: str | None, convening=None) -> str | None:
    """`code` when it is one of the convening's languages, else None."""
    code = (code or "").strip().lower()
    return code if code in enabled_languages(convening) else None


def request_convening():
    """The convening a request's URL names (its slug), or None; looked up once per request."""
    if "i18n_convening" not in g:
        g.i18n_convening = None
        slug = (request.view_args or {}).get("slug")
        # Only a slug a convening could have is looked up: an error page for a typed NUL or a
        # 2,000-character path must not fail again in the database while it picks its language.
        if isinstance(slug, str) and re.fullmatch(r"[a-z0-9-]{1,64}", slug):
            from sqlalchemy import select
            from sqlalchemy.exc import SQLAlchemyError

            from convene.extensions import db
            from convene.models import Convening

            try:
                g.i18n_convening = db.session.execute(select(Convening).where(Convening.slug == slug)).scalar()
            except SQLAlchemyError:  # a page shown after the database failed: the default language will do
                db.session.rollback()
    return g.i18n_convening


def use_convening(convening) -> None:
    """Serve the rest of the request for this convening (a view that found it by something other than a slug)."""
    g.i18n_convening = convening
    refresh()


def use_registration(registration) -> None:
    """On a registration's own pages, its stored language comes before the cookie and the browser's."""
    g.i18n_convening = registration.convening
    g.i18n_registration_language = getattr(registration, "language", None)
    refresh()


def select_locale() -> str:
    """The request's language, by the order in the module's docstring."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    if request.blueprint == "admin":
        return back_office_language()
    convening = request_convening()
    choices = [request.args.get("lang"), g.get("i18n_registration_language"), request.cookies.get(COOKIE)]
    for code in choices:
        if valid_language(code, convening):
            return valid_language(code, convening)
    offered = enabled_languages(convening)
    return request.accept_languages.best_match(offered) or default_language(convening)


def back_office_languages() -> list[str]:
    """The languages the back office is offered in (config BACK_OFFICE_LANGUAGES), English first by default."""
    configured = current_app.config.get("BACK_OFFICE_LANGUAGES") or [DEFAULT_LANGUAGE]
    return [code for code in configured if code in LANGUAGES] or [DEFAULT_LANGUAGE]


def back_office_language() -> str:
    """A back-office request's language: the cookie's, else the browser's, among the back office's; else its first."""
    offered = back_office_languages()
    if has_request_context():
        if request.cookies.get(COOKIE) in offered:
            return request.cookies[COOKIE]
        best = request.accept_languages.best_match(offered)
        if best:
            return best
    return offered[0]


def staff_language(convening=None) -> str:
    """The language of a staff-only email or document: the convening's default when the back office has it."""
    code = default_language(convening)
    return code if code in back_office_languages() else back_office_languages()[0]


def back_office_domain() -> Domain:
    """The app's `messages` catalogue with the `admin` one over it (built in init_app for this app's directories)."""
    return current_app.extensions["convene_back_office_domain"]


def use_back_office() -> None:
    """Read the back office's catalogue for the rest of the request (the admin blueprint's pages)."""
    back_office_domain().as_default()


def _back_office_request() -> None:
    if request.blueprint == "admin":
        use_back_office()


def select_timezone() -> str | None:
    convening = request_convening() if has_request_context() else None
    return getattr(convening, "timezone", None) or None


def current_language() -> str:
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT_LANGUAGE


def text_direction(code: str | None = None) -> str:
    return "rtl" if (code or current_language()) in RTL_LANGUAGES else "ltr"


def person_language(registration=None, convening=None, language: str | None = None) -> str:
    """The language to write to a person in: theirs if stored, else the convening's default."""
    for code in (language, getattr(registration, "language", None)):
        if code in LANGUAGES:
            return code
    if convening is None and registration is not None:
        convening = getattr(registration, "convening", None)
    return default_language(convening)


@contextmanager
def in_language(code: str | None) -> Iterator[str]:
    """Render (emails, PDFs) in `code` whatever the request's language; yields the code used."""
    code = code if code in LANGUAGES else DEFAULT_LANGUAGE
    with force_locale(code):
        yield code


def language_links() -> list[dict]:
    """The language switch: one plain link per enabled language, to this page in that language."""
    if (not has_request_context() or request.endpoint is None or request.method != "GET"
            or request.blueprint == "admin"):
        return []
    codes = enabled_languages(request_convening())
    if len(codes) < 2:
        return []
    current = current_language()
    from flask import url_for

    view_args = request.view_args or {}
    # The page's own query is kept, except keys url_for reserves or the path already names (a typed ?slug=).
    args = {key: value for key, value in request.args.items()
            if key not in view_args and not key.startswith("_") and key != "lang"}
    links = []
    for code in codes:
        try:
            url = url_for(request.endpoint, **view_args, **args, lang=code)
        except (BuildError, ValueError, TypeError):  # a query a route cannot rebuild: the bare page, switched
            url = url_for(request.endpoint, **view_args, lang=code)
        links.append({"code": code, "name": LANGUAGES[code], "current": code == current, "url": url})
    return links


def remember_choice(response):
    """A `?lang=` choice is kept in a cookie, so the next page (and the next visit) stays in that language."""
    if not has_request_context():
        return response
    chosen = request.args.get("lang")
    if chosen and valid_language(chosen, request_convening() if request.view_args is not None else None):
        response.set_cookie(COOKIE, chosen.strip().lower(), max_age=COOKIE_MAX_AGE, samesite="Lax",
                            secure=request.is_secure, httponly=True)
    return response


# strftime directives the templates use, as CLDR patterns so month and day names follow the language.
_STRFTIME_TO_CLDR = {"a": "EEE", "A": "EEEE", "d": "dd", "b": "MMM", "B": "MMMM", "Y": "yyyy", "H": "HH",
                     "M": "mm", "e": "d", "m": "MM", "y": "yy", "I": "hh", "p": "a", "j": "D"}
_DIRECTIVE_RE = re.compile(r"%(.)")


def _cldr_pattern(fmt: str, value) -> str:
    """A strftime format as a CLDR pattern; literal text is quoted, %Z is the zone's own abbreviation."""
    parts, position = [], 0
    for match in _DIRECTIVE_RE.finditer(fmt):
        parts.append(_quote(fmt[position:match.start()]))
        code = match.group(1)
        if code == "Z":
            parts.append(_quote(value.strftime("%Z")))
        elif code == "%":
            parts.append(_quote("%"))
        else:
            parts.append(_STRFTIME_TO_CLDR.get(code, _quote(value.strftime("%" + code))))
        position = match.end()
    parts.append(_quote(fmt[position:]))
    return "".join(parts)


def _quote(text: str) -> str:
    if not text:
        return ""
    return "'" + text.replace("'", "''") + "'" if re.search(r"[A-Za-z']", text) else text


def format_local(value: datetime | date, fmt: str) -> str:
    """`value` (already in the convening's zone) written with a strftime format, in the current language."""
    locale = current_language()
    if isinstance(value, datetime):
        return babel_format_datetime(value, _cldr_pattern(fmt, value), tzinfo=value.tzinfo, locale=locale)
    return babel_format_date(value, _cldr_pattern(fmt, value), locale=locale)


def format_money(cents: int, currency: str) -> str:
    return babel_format_currency(cents / 100, currency.upper(), locale=current_language())


def format_number(number) -> str:
    return babel_format_decimal(number, locale=current_language())


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(app.root_path + "/translations"))
    app.config.setdefault("BACK_OFFICE_LANGUAGES", [DEFAULT_LANGUAGE])
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    # Flask-Babel merges one catalogue per (directory, domain) pair, later ones winning: for each translation
    # directory, `messages` then `admin`. A domain of its own per app, so its cache follows this app's directories.
    directories = app.extensions["babel"].translation_directories
    app.extensions["convene_back_office_domain"] = Domain(
        translation_directories=[path for path in directories for _ in (0, 1)],
        domain=";".join([app.extensions["babel"].default_domain, BACK_OFFICE_DOMAIN] * len(directories)))
    app.before_request(_back_office_request)
    # {% trans %} blocks are written across lines; their msgids are the text with whitespace collapsed.
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.after_request(remember_choice)
    app.add_template_global(language_links)
    app.add_template_global(current_language)
    app.add_template_global(text_direction)
    app.add_template_global(LANGUAGES, "LANGUAGES")
