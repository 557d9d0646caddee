"""Copying a convening for a new edition."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from convene.admin import bp
from convene.admin.access import allow
from convene.admin.edition_forms import EditionForm
from convene.admin.util import convening_or_404, show_error
from convene.errors import ConveneError
from convene.permissions import Permission
from convene.services import editions as service


@bp.route("/c/<int:convening_id>/copy", methods=["GET", "POST"])
@allow(Permission.COPY, Permission.COPY)
def copy_convening(convening_id: int):
    """Copy a convening's setup (not its people) to a new, unpublished convening on new dates."""
    convening = convening_or_404(convening_id)
    form = EditionForm() if request.method == "POST" else EditionForm(data=service.suggest_edition(convening))
    if form.validate_on_submit():
        try:
            edition = service.copy_convening(convening.id, **form.edition_data(), user_id=current_user.id)
        except ConveneError as error:
            show_error(form, error)
        else:
            copied = service.describe_counts(service.setup_counts(edition.id))
            flash(_("%(edition)s is created from %(convening)s with %(copied)s, every date moved to the new first "
                    "day; no registration, order or payment came along. It is unpublished, and so are its program "
                    "and site visits, with rankings closed: check the settings, then publish.",
                    edition=edition.name, convening=convening.name, copied=copied), "success")
            return redirect(url_for("admin.edit_convening", convening_id=edition.id))
    return render_template("admin/editions/copy.html", convening=convening, form=form,
                           counts=service.setup_counts(convening.id))
