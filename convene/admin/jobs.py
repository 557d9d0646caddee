"""Background jobs of a convening: the list with the queue's health, one job's page, its file, and retry."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from convene import jobs as service
from convene import storage
from convene.admin import bp
from convene.admin.access import allow
from convene.admin.util import convening_or_404
from convene.errors import ConveneError
from convene.extensions import db
from convene.forms import EmptyForm
from convene.models import Convening, Job, PrintJob
from convene.permissions import Permission

# Kinds whose file is downloaded here (print batches are downloaded from the print queue, with its checks).
FILE_KINDS = {"export_registrations": ("text/csv", Permission.PAYMENTS_VIEW)}


def _job(convening: Convening, job_id: int) -> Job:
    job = db.session.get(Job, job_id)
    if job is None or job.convening_id != convening.id:
        abort(404)
    return job


@bp.get("/c/<int:convening_id>/jobs")
@allow(Permission.EDIT)
def jobs(convening_id: int):
    """This convening's background jobs, newest first, and the queue's health."""
    convening = convening_or_404(convening_id)
    return render_template("admin/jobs/list.html", convening=convening, rows=service.list_jobs(convening.id),
                           health=service.queue_health(convening.id), labels=service.KIND_LABELS)


@bp.get("/c/<int:convening_id>/jobs/<int:job_id>")
@allow(Permission.VIEW)  # whoever queued an export (finance, say) follows it here
def job(convening_id: int, job_id: int):
    """One job: its progress (the page refreshes itself), its message, its file, a way to try it again."""
    convening = convening_or_404(convening_id)
    job = _job(convening, job_id)
    print_job = db.session.execute(sa.select(PrintJob.id).where(PrintJob.job_id == job.id)).scalar()
    return render_template("admin/jobs/job.html", convening=convening, job=job, print_job=print_job,
                           label=service.KIND_LABELS.get(job.kind, job.kind), button_form=EmptyForm(),
                           downloadable=job.kind in FILE_KINDS,
                           has_file=job.kind in FILE_KINDS and storage.exists(job.result_file),
                           import_report=_import_report(job))


def _import_report(job: Job) -> dict | None:
    """The problems of an import that did not happen (kept with the job, the message says only the first)."""
    if job.kind != "import_registrations" or job.status != "failed":
        return None
    from convene.services.imports import job_report

    return job_report(job.id)


@bp.get("/c/<int:convening_id>/jobs/<int:job_id>/file")
@allow(Permission.PAYMENTS_VIEW)  # exports carry prices and payment status, like the direct download
def job_file(convening_id: int, job_id: int):
    """Download the file a finished export job made."""
    convening = convening_or_404(convening_id)
    job = _job(convening, job_id)
    if job.kind not in FILE_KINDS or job.status != "done":
        abort(404)
    response = storage.download(job.result_file, job.result_file, FILE_KINDS[job.kind][0])
    if response is None:
        abort(404)
    return response


@bp.post("/c/<int:convening_id>/jobs/<int:job_id>/retry")
@allow(Permission.EDIT, Permission.EDIT)
def retry_job(convening_id: int, job_id: int):
    """Run a failed job again from its first attempt."""
    convening = convening_or_404(convening_id)
    job = _job(convening, job_id)
    if not EmptyForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
    else:
        try:
            service.retry_job(job.id)
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(_("The job is queued again."), "success")
    return redirect(url_for("admin.job", convening_id=convening.id, job_id=job.id))
