"""Translations of a convening's own texts, and who needs interpretation into which language."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from convene.admin import bp
from convene.admin.access import allow
from convene.admin.util import convening_or_404
from convene.errors import ConveneError
from convene.forms import EmptyForm
from convene.languages import INTERPRETATION_LANGUAGES, LANGUAGES
from convene.permissions import Permission
from convene.services import languages as service


@bp.route("/c/<int:convening_id>/translations", methods=["GET", "POST"])
@allow(Permission.SETUP_VIEW, Permission.EDIT)
def translations(convening_id: int):
    """Every translatable text beside its default-language original, for one enabled language at a time."""
    convening = convening_or_404(convening_id)
    targets = service.target_languages(convening)
    asked = (request.values.get("lang") or "").strip().lower()
    language = asked if asked in targets else (targets[0] if targets else None)
    form = EmptyForm()
    errors: dict[str, list[str]] = {}
    typed: dict[str, str] = {}
    if request.method == "POST" and form.validate_on_submit():
        try:
            changed = service.save_translations(convening.id, asked, request.form)
        except ConveneError as error:
            for problem in error.details.get("problems", [error]):
                if problem.field and problem.field.startswith("t-"):
                    errors.setdefault(problem.field, []).append(problem.message)
                else:
                    flash(problem.message, "error")
            typed = {key: value for key, value in request.form.items() if key.startswith("t-")}
            if errors:
                flash(_("Nothing was saved: fix the texts marked below."), "error")
        else:
            flash(_("The %(asked)s texts are saved (%(changed)s changed).",
                    asked=LANGUAGES[asked], changed=changed) if changed
                  else _("Nothing had changed."), "success")
            return redirect(url_for("admin.translations", convening_id=convening.id, lang=asked,
                                    missing=request.args.get("missing") or None))
    sheet = service.translation_sheet(convening, language) if language else []
    return render_template(
        "admin/languages/translations.html", convening=convening, form=form, language=language, targets=targets,
        sheet=sheet, errors=errors, typed=typed, missing_only=bool(request.args.get("missing")),
        missing=service.missing_counts(convening), LANGUAGES=LANGUAGES,
    ), (400 if errors or (request.method == "POST" and asked not in targets) else 200)


@bp.get("/c/<int:convening_id>/interpretation")
@allow(Permission.VIEW)
def interpretation(convening_id: int):
    """How many people need interpretation into each language: overall, per session and per site visit."""
    convening = convening_or_404(convening_id)
    return render_template("admin/languages/interpretation.html", convening=convening,
                           report=service.interpretation_report(convening), names=INTERPRETATION_LANGUAGES)
