"""Importing registrations from a spreadsheet: upload, say what each column feeds, check, import; the template.

Every row is checked first and the file is imported whole or not at all. A file whose columns all
say what they are imports at once; otherwise the page keeps the file (see services/imports.py,
keep_upload) and shows its columns step: a select per column, "Check again" and "Import".
A file of more than IMPORT_INLINE_MAX rows is imported by the worker: "Import" queues the job and
the job's page shows its progress, then the count or the problems.
"""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from convene.admin import bp
from convene.admin.access import allow
from convene.admin.import_forms import ImportColumnsForm, ImportForm, columns_form
from convene.admin.registration_forms import fill_choices
from convene.admin.registrations import _csv_response
from convene.admin.util import convening_or_404, show_error
from convene.errors import ConveneError
from convene.models import Convening
from convene.permissions import Permission
from convene.services import imports as service

COLUMNS_PREFIX = "columns"  # the columns step's fields, apart from the upload form's on the same page


def _page(convening: Convening, form: ImportForm, report: service.ImportReport | None = None,
          columns: ImportColumnsForm | None = None, uses: list[service.ColumnUse] | None = None):
    """The import page: the upload, what happened, the columns step when a file waits, the columns read."""
    targets = service.import_targets(convening)
    # Being asked what unread columns feed is a step, not a failure; problems and refusals are.
    failed = report is not None and report.code not in (None, "import_columns_unread")
    status = 400 if form.errors or (columns is not None and columns.errors) or failed else 200
    return render_template("admin/imports/import.html", convening=convening, form=form, report=report,
                           columns_form=columns, uses=uses if uses is not None else (report.columns if report else []),
                           person_columns=service.COLUMNS, targets=targets,
                           rank_headers=[service.rank_header(n) for n in range(1, targets.ranks + 1)]), status


def _columns_step(convening: Convening, report: service.ImportReport, data: bytes, defaults_form,
                  upload: str | None = None) -> ImportColumnsForm | None:
    """The columns form for a file that did not import (none when it could not be read at all)."""
    if not report.columns:
        return None
    try:
        upload = upload or service.keep_upload(data, convening.id, current_user.id)
    except (ConveneError, OSError) as error:
        current_app.logger.warning("import: could not keep the upload for the columns step: %s", error)
        return None
    form = columns_form(service.import_targets(convening), service.read_header(data), report.columns,
                        formdata=None, prefix=COLUMNS_PREFIX, data={"upload": upload, **{
                            name: defaults_form[name].data for name in (
                                "ticket_type_id", "delegation_id", "new_delegation_name", "role", "settlement",
                                "payment_note", "send_emails")}})
    fill_choices(form, convening)
    return form


@bp.route("/c/<int:convening_id>/import", methods=["GET", "POST"])
@allow(Permission.REGISTRATIONS_EDIT, Permission.REGISTRATIONS_EDIT)
def import_registrations(convening_id: int):
    """Upload a spreadsheet of delegates; every row is imported, or none and the problems are listed."""
    convening = convening_or_404(convening_id)
    form = ImportForm()
    fill_choices(form, convening)
    report = columns = None
    if form.validate_on_submit():
        data = form.file.data.read(service.MAX_UPLOAD_BYTES + 1)
        if len(data) > service.MAX_UPLOAD_BYTES:
            form.file.errors = [*form.file.errors, _("The file is larger than 5 MB; split it into smaller files.")]
        else:
            try:
                rows = service.count_rows(data)
                if rows > service.import_inline_max():
                    return _big_file(convening, form, data, rows)
                report = service.import_registrations(convening.id, data, form.defaults(),
                                                      send_emails=form.send_emails.data, refuse_unread=True)
            except ConveneError as error:
                show_error(form, error)
            else:
                if not report.ok:
                    columns = _columns_step(convening, report, data, form)
    return _page(convening, form, report, columns)


def _big_file(convening: Convening, form: ImportForm, data: bytes, rows: int):
    """A file for the worker: its columns step when a header says nothing, else its job (and its page)."""
    uses = service.describe_columns(convening, data)
    if any(use.target is None for use in uses):
        report = service.ImportReport(rows=rows, columns=uses, code="import_columns_unread",
                                      ignored_columns=[use.name for use in uses if use.target in (None, "ignore")])
        return _page(convening, form, report, _columns_step(convening, report, data, form))
    reference = service.keep_upload(data, convening.id, current_user.id)
    return _queue(convening, reference, form.defaults(), form.send_emails.data, None, rows)


def _queue(convening: Convening, reference: str, defaults, send_emails: bool, mapping, rows: int):
    job = service.request_registrations_import(convening.id, reference, defaults, send_emails=send_emails,
                                               mapping=mapping, rows=rows, requested_by=current_user.id)
    flash(_("The file has %(rows)s rows: it is being imported in the background; this page shows how it "
            "goes.", rows=format(rows, ',')),
          "success")
    return redirect(url_for("admin.job", convening_id=convening.id, job_id=job.id))


@bp.post("/c/<int:convening_id>/import/columns")
@allow(Permission.REGISTRATIONS_EDIT, Permission.REGISTRATIONS_EDIT)
def import_columns(convening_id: int):
    """The columns step: say what each column of the kept file feeds, then check it again or import it."""
    convening = convening_or_404(convening_id)
    upload_form = ImportForm(formdata=None)
    fill_choices(upload_form, convening)
    reference = ImportColumnsForm(prefix=COLUMNS_PREFIX).upload.data or ""
    try:
        data = service.read_upload(reference, convening.id, current_user.id)
    except ConveneError as error:
        flash(error.message, "error")
        return redirect(url_for("admin.import_registrations", convening_id=convening.id))
    targets = service.import_targets(convening)
    form = columns_form(targets, service.read_header(data), prefix=COLUMNS_PREFIX)
    fill_choices(form, convening)
    report = None
    if form.validate_on_submit():
        rows = service.count_rows(data)
        if form.confirm.data and rows > service.import_inline_max():
            if not any(use.target is None for use in service.describe_columns(convening, data, form.mapping())):
                try:
                    return _queue(convening, reference, form.defaults(), form.send_emails.data, form.mapping(), rows)
                except ConveneError as error:
                    show_error(form, error)
        try:
            report = service.import_registrations(
                convening.id, data, form.defaults(), send_emails=form.send_emails.data, mapping=form.mapping(),
                refuse_unread=True, dry_run=not form.confirm.data)
        except ConveneError as error:
            show_error(form, error)
        else:
            if report.ok and not report.checked:
                service.discard_upload(reference, convening.id, current_user.id)
                return _page(convening, upload_form, report)
            for use in report.unread if form.confirm.data else []:  # left on "choose": said beside each
                select = form[f"col_{use.index}"]
                select.errors = [*select.errors, _("Choose what this column feeds, or ignore it.")]
    uses = report.columns if report is not None else service.describe_columns(convening, data, form.mapping())
    return _page(convening, upload_form, report, form, uses)


@bp.get("/c/<int:convening_id>/import/template.csv")
@allow(Permission.REGISTRATIONS_EDIT)
def import_template(convening_id: int):
    """A spreadsheet with the columns the import reads: person fields, each question, the site-visit ranking."""
    convening = convening_or_404(convening_id)
    return _csv_response(service.template_csv(convening), f"{convening.slug}-import-template.csv")
