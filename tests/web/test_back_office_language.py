"""The back office is in English until a language's admin catalogue exists and the deployment lists it."""
from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo

import convene

SHIPPED = Path(convene.__file__).resolve().parent / "translations"


@pytest.fixture
def french_admin_catalogue(app_config, tmp_path) -> dict:
    """A tiny fr/LC_MESSAGES/admin.mo in a second translation directory, as `make translations-compile` would build."""
    catalog = Catalog(locale="fr", domain="admin")
    catalog.add("Sign in", "Se connecter")
    catalog.add("Forgot your password?", "Mot de passe oublié ?")
    catalog.add("Keep me signed in on this device", "Rester connecté sur cet appareil")
    target = tmp_path / "translations" / "fr" / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "admin.mo").open("wb") as handle:
        write_mo(handle, catalog)
    app_config["BABEL_TRANSLATION_DIRECTORIES"] = f"{SHIPPED};{tmp_path / 'translations'}"
    return app_config


def test_the_back_office_is_english_whatever_the_browser_asks(client):
    page = client.get("/admin/login", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert '<html lang="en"' in page
    assert "<h1>Sign in</h1>" in page and "Keep me signed in on this device" in page


def test_a_catalogue_alone_does_not_switch_the_back_office(french_admin_catalogue, client):
    page = client.get("/admin/login", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "<h1>Sign in</h1>" in page and "Se connecter" not in page


def test_listing_the_language_makes_the_back_office_follow_its_catalogue(french_admin_catalogue, client, app):
    app.config["BACK_OFFICE_LANGUAGES"] = ["en", "fr"]
    page = client.get("/admin/login", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert '<html lang="fr"' in page
    assert "<h1>Se connecter</h1>" in page
    assert "Mot de passe oublié ?" in page
    assert "Rester connecté sur cet appareil" in page  # a form label marked with lazy_gettext in convene/admin
    english = client.get("/admin/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "<h1>Sign in</h1>" in english


def test_attendee_pages_do_not_read_the_admin_catalogue(french_admin_catalogue, client, app):
    app.config["BACK_OFFICE_LANGUAGES"] = ["en", "fr"]
    with app.test_request_context("/", headers={"Accept-Language": "fr"}):
        from flask_babel import gettext

        assert gettext("Keep me signed in on this device") == "Keep me signed in on this device"
