"""Which languages a convening works in, and organizer-written content in the reader's language.

Organizers write every field in the convening's default language; translations live beside it in
each row's `translations` column as {language: {field: text}}. `localized()` picks the reader's
language (Flask-Babel's current locale, which a forced locale for emails also sets) and falls back
to the default text whenever a translation is missing or blank, so a page never shows an empty name.
"""
from __future__ import annotations

from flask import Flask, current_app, g, has_app_context, has_request_context
from flask_babel import lazy_gettext as _l

# Languages attendee pages, emails and documents can be in (code -> the language's own name).
LANGUAGES: dict[str, str] = {
    "en": "English",
    "fr": "Français",
    "es": "Español",
    "ar": "العربية",
}
RTL_LANGUAGES = frozenset({"ar"})
DEFAULT_LANGUAGE = "en"

# Spoken languages people may ask interpretation into; the convening offers a subset of them.
# Sign language is asked as an accessibility need, so it is not repeated here.
INTERPRETATION_LANGUAGES: dict = {
    "en": _l("English"),
    "fr": _l("French"),
    "es": _l("Spanish"),
    "ar": _l("Arabic"),
    "fa": _l("Farsi / Dari"),
    "ps": _l("Pashto"),
    "uk": _l("Ukrainian"),
    "ru": _l("Russian"),
    "ti": _l("Tigrinya"),
    "so": _l("Somali"),
    "sw": _l("Swahili"),
    "pt": _l("Portuguese"),
    "zh": _l("Chinese (Mandarin)"),
    "ht": _l("Haitian Creole"),
}

# The same languages by their English names, for exports and the back office's lists.
ENGLISH_NAMES: dict[str, str] = {
    "en": "English", "fr": "French", "es": "Spanish", "ar": "Arabic", "fa": "Farsi / Dari", "ps": "Pashto",
    "uk": "Ukrainian", "ru": "Russian", "ti": "Tigrinya", "so": "Somali", "sw": "Swahili", "pt": "Portuguese",
    "zh": "Chinese (Mandarin)", "ht": "Haitian Creole",
}

# The fields organizers may translate, per table. Longest allowed length is the column's own.
TRANSLATABLE: dict[str, tuple[str, ...]] = {
    "convening": ("name", "description"),
    "ticket_type": ("name", "description"),
    "question": ("label", "help_text", "choices"),
    "host_organization": ("name", "description"),
    "program_session": ("title", "description", "location"),
    "site_visit": ("meeting_point", "transport_notes"),
}


def current_language() -> str | None:
    """The language of the page or email being made, or None outside one.

    Outside a request (the worker, the command line) only a language forced for what is being made
    (an email or a PDF for one person) counts; otherwise content stays in the convening's default.
    """
    if not has_app_context() or "babel" not in current_app.extensions:
        return None
    if not has_request_context():
        babel_state = g.get("_flask_babel")
        if babel_state is None or getattr(babel_state, "forced_babel_locale", None) is None:
            return None
    from flask_babel import get_locale

    locale = get_locale()
    return locale.language if locale is not None else None


def convening_of(obj):
    """The convening a translatable row belongs to."""
    from convene.models import Convening

    if isinstance(obj, Convening):
        return obj
    convening = getattr(obj, "convening", None)
    if convening is not None:
        return convening
    from convene.extensions import db

    return db.session.get(Convening, obj.convening_id)


def reading_language(convening, lang: str | None = None) -> str:
    """The language content is shown in: the asked one when the convening has it, else its default."""
    lang = lang or current_language()
    default = convening.default_language or DEFAULT_LANGUAGE
    if lang and lang != default and lang in (convening.languages or ()):
        return lang
    return default


def _translation(obj, lang: str, field: str):
    return ((getattr(obj, "translations", None) or {}).get(lang) or {}).get(field)


def localized(obj, field: str, lang: str | None = None) -> str:
    """The field's text in the reader's language, or in the convening's default language."""
    if obj is None:
        return ""
    default_text = getattr(obj, field)
    language = reading_language(convening_of(obj), lang)
    text = _translation(obj, language, field)
    if isinstance(text, str) and text.strip():
        return text
    return default_text if default_text is not None else ""


def localized_choices(question, lang: str | None = None) -> list[tuple[str, str]]:
    """(stored value, label shown) for each choice: answers keep the default-language choice."""
    choices = list(question.choices or [])
    language = reading_language(convening_of(question), lang)
    translated = _translation(question, language, "choices") or []
    labels = []
    for position, choice in enumerate(choices):
        label = translated[position] if position < len(translated) else ""
        labels.append((choice, label if isinstance(label, str) and label.strip() else choice))
    return labels


def choice_label(question, value, lang: str | None = None) -> str:
    """A stored choice shown in the reader's language (a choice since removed shows as stored)."""
    return dict(localized_choices(question, lang)).get(value, value)


def init_app(app: Flask) -> None:
    app.add_template_global(localized)
    app.add_template_global(localized_choices)
    app.add_template_global(choice_label)
    app.add_template_filter(localized)
    app.add_template_global(INTERPRETATION_LANGUAGES, "INTERPRETATION_LANGUAGES")
    app.add_template_global(ENGLISH_NAMES, "ENGLISH_NAMES")
