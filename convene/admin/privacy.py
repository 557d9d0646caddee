"""Privacy: a convening's notice and retention, and erasing its personal data once it is over (organizers only)."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from convene.admin import bp
from convene.admin.access import allow
from convene.admin.privacy_forms import EraseForm, PrivacyForm
from convene.admin.util import convening_or_404, show_error
from convene.errors import ConveneError
from convene.permissions import Permission
from convene.services import privacy as service


@bp.route("/c/<int:convening_id>/privacy", methods=["GET", "POST"])
@allow(Permission.SETUP_VIEW, Permission.EDIT)
def privacy(convening_id: int):
    """Edit the privacy notice and the retention; see the default text, the erasure date and past erasures."""
    convening = convening_or_404(convening_id)
    if request.method == "POST":
        form = PrivacyForm()
    else:
        # "Start from the default text" fills the box with it, to edit rather than write from nothing.
        notice = convening.privacy_notice or (service.default_notice(convening)
                                              if request.args.get("start") == "default" else "")
        form = PrivacyForm(data={"privacy_notice": notice, "retention_months": convening.retention_months})
    if form.validate_on_submit():
        try:
            service.update_privacy_settings(convening.id, form.privacy_notice.data, form.retention_months.data)
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The privacy settings are saved."), "success")
            return redirect(url_for("admin.privacy", convening_id=convening.id))
    return render_template("admin/privacy/settings.html", convening=convening, form=form,
                           default_text=service.default_notice(convening),
                           erase_on=service.retention_ends_on(convening), ended=service.has_ended(convening),
                           erasures=service.erasures_of(convening.id), labels=dict(
                               (key, label) for key, label, _ in service.KINDS),
                           erased_on=service.local_day(convening, convening.personal_data_erased_at))


@bp.route("/c/<int:convening_id>/privacy/erase", methods=["GET", "POST"])
@allow(Permission.EDIT, Permission.EDIT)
def privacy_erase(convening_id: int):
    """Preview exactly what erasing the convening's personal data changes, then do that on a typed confirmation."""
    convening = convening_or_404(convening_id)
    form = EraseForm()
    ended = service.has_ended(convening)
    if form.validate_on_submit() and form.confirms(convening.slug):
        try:
            # The token names the previewed set: if it changed meanwhile, nothing is erased.
            result = service.erase_personal_data(convening.id, expected=form.preview.data or "",
                                                 by=current_user.email)
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(_("Personal data of %(convening)s is erased: %(describe)s.",
                    convening=convening.name, describe=result.describe()), "success")
            return redirect(url_for("admin.privacy", convening_id=convening.id))
    plan = service.erasure_preview(convening.id)
    form.preview.data = plan.token  # the confirmation names what this page shows, not what an older one did
    return render_template("admin/privacy/erase.html", convening=convening, form=form, plan=plan, ended=ended,
                           erased_on=service.local_day(convening, convening.personal_data_erased_at),
                           last_day=service.day_text(convening.ends_on))
