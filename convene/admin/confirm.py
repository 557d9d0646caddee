"""Deleting one thing from the back office: a page saying what goes with it first, the deletion only on confirmation."""
from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, render_template, request

from convene.errors import ConveneError
from convene.forms import EmptyForm
from convene.models import Convening
from convene.services.previews import Deletion


def confirm_deletion(convening: Convening, preview: Callable[[], Deletion], delete: Callable[[str], Deletion], *,
                     back: str, after: str, nav: str | None = None):
    """A GET, or a POST without the preview's token, shows what deleting would do; a confirmed POST deletes.

    `preview()` says what deleting would do now; `delete(token)` deletes exactly that, or raises a
    ConveneError (what it affects changed, or it cannot be deleted) and the page is shown again, as it
    now stands, with the message. No JavaScript: the page is a plain form with the token in it.
    """
    form = EmptyForm()
    if form.validate_on_submit() and "preview" in request.form:
        try:
            deletion = delete(request.form.get("preview", ""))
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(deletion.done, "success")
            return redirect(after)
    return render_template("admin/confirm_delete.html", convening=convening, form=form, deletion=preview(),
                           action=request.path, back=back, nav=nav)
