"""Printing for staff and organizers: the badge print queue, batch jobs, rosters, the program book, agendas."""
from __future__ import annotations

import re

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, ngettext
from flask_login import current_user

from convene import storage
from convene.admin import bp
from convene.admin.access import allow
from convene.permissions import Permission
from convene.admin.printing_forms import BadgeBatchForm
from convene.admin.util import convening_or_404
from convene.errors import ConveneError
from convene.extensions import db
from convene.forms import EmptyForm
from convene.models import Convening, PrintJob
from convene.printing import LAYOUTS
from convene.services import printing as service
from convene.services.visits import visits_of

LIST_LIMIT = 100
# A job's recorded badge filter (BadgeFilter.params()) → the print queue's query-string arguments.
FILTER_ARGS = {"which": "which", "delegation": "delegation", "ticket_type_id": "ticket", "role": "role",
               "registration_id": "registration", "reference": "reference"}


def _job(convening: Convening, job_id: int) -> PrintJob:
    job = db.session.get(PrintJob, job_id)
    if job is None or job.convening_id != convening.id:
        abort(404)
    return job


def _filter_form(convening: Convening) -> BadgeBatchForm:
    """The badge choices read from the query string (no CSRF: this only reads)."""
    form = BadgeBatchForm(request.args, meta={"csrf": False})
    form.fill_choices(convening)
    return form


def _again_url(convening: Convening, job: PrintJob) -> str:
    """The print queue with a failed badge batch's choices filled in, to make it again."""
    if job.kind != "badges":
        return url_for("admin.print_queue", convening_id=convening.id)
    args = {FILTER_ARGS[k]: v for k, v in (job.params.get("filter") or {}).items() if k in FILTER_ARGS}
    args.update(layout=job.params.get("layout") or "", duplex="y" if job.params.get("duplex") else "")
    return url_for("admin.print_queue", convening_id=convening.id, **{k: v for k, v in args.items() if v})


def _pdf_response(pdf: bytes, filename: str, *, download: bool = True) -> Response:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", filename)
    disposition = "attachment" if download else "inline"
    return Response(pdf, content_type="application/pdf", headers={"Content-Disposition": f"{disposition}; filename={safe}"})


def _one_pdf(render, filename: str) -> Response:
    """A PDF of one thing (a site visit's roster, a person's agenda); 404 when that thing is not this convening's."""
    try:
        pdf = render()
    except ConveneError as error:
        if error.status_code == 404:
            abort(404)
        raise
    return _pdf_response(pdf, filename)


@bp.get("/c/<int:convening_id>/print")
@allow(Permission.PRINT)
def print_queue(convening_id: int):
    """Choose badges and a layout, preview the first sheet, make the PDF; rosters; recent batches."""
    convening = convening_or_404(convening_id)
    service.fail_dead_print_jobs(convening.id)
    form = _filter_form(convening)
    valid = form.validate() if request.args else True
    people, total = [], 0
    if valid:
        badge_filter = form.badge_filter()
        total = service.count_badges(convening.id, badge_filter)
        people = service.badge_registrations(convening.id, badge_filter, limit=LIST_LIMIT)
    post_form = BadgeBatchForm(formdata=None, data=form.data)
    post_form.fill_choices(convening)
    visits = sorted(visits_of(convening.id), key=lambda v: (v.slot.starts_at, v.host.name.lower()))
    jobs = service.recent_jobs(convening.id)
    return render_template(
        "admin/printing/queue.html", convening=convening, form=form, post_form=post_form, valid=valid,
        people=people, total=total, list_limit=LIST_LIMIT, counts=service.badge_counts(convening.id),
        jobs=jobs, again={job.id: _again_url(convening, job) for job in jobs if job.status == "failed"},
        visits=visits, layouts=LAYOUTS, button_form=EmptyForm(), inline_max=service.INLINE_MAX,
        query_args=form.query_args() if valid else {},
    ), (200 if valid else 400)


@bp.get("/c/<int:convening_id>/print/preview.png")
@allow(Permission.PRINT)
def print_preview(convening_id: int):
    """The first sheet of the chosen badges as an image."""
    convening = convening_or_404(convening_id)
    form = _filter_form(convening)
    if not form.validate():
        abort(400)
    try:
        png = service.preview_badges_png(convening.id, form.badge_filter(), form.layout.data,
                                         duplex=form.duplex.data)
    except ConveneError as error:
        abort(error.status_code if error.status_code in (400, 404) else 400)
    return Response(png, content_type="image/png")


@bp.post("/c/<int:convening_id>/print")
@allow(Permission.PRINT, Permission.PRINT)
def print_badges(convening_id: int):
    """Make the PDF of the chosen badges: right away when small, in the background when large."""
    convening = convening_or_404(convening_id)
    form = BadgeBatchForm()
    form.fill_choices(convening)
    if not form.validate_on_submit():
        flash(_("Those choices could not be used; please choose again."), "error")
        return redirect(url_for("admin.print_queue", convening_id=convening.id))
    try:
        job = service.request_badge_batch(
            convening.id, form.badge_filter(), form.layout.data, duplex=form.duplex.data,
            requested_by=current_user.email,
        )
    except ConveneError as error:
        flash(error.message, "error")
        return redirect(url_for("admin.print_queue", convening_id=convening.id, **form.query_args()))
    if job.status == "done":
        flash(ngettext("The PDF of %(num)d badge is ready.", "The PDF of %(num)d badges is ready.",
                       job.total), "success")
    elif job.status == "failed":
        flash(_("The badges could not be rendered; the error is shown below."), "error")
    return redirect(url_for("admin.print_job", convening_id=convening.id, job_id=job.id))


@bp.get("/c/<int:convening_id>/print/jobs/<int:job_id>")
@allow(Permission.PRINT)
def print_job(convening_id: int, job_id: int):
    """One batch: its progress while it renders (the page refreshes itself), then download and mark printed."""
    convening = convening_or_404(convening_id)
    service.fail_dead_print_jobs(convening.id)
    job = _job(convening, job_id)
    return render_template(
        "admin/printing/job.html", convening=convening, job=job, layout=LAYOUTS.get(job.params.get("layout")),
        stale=service.job_is_stale(job), has_file=service.job_has_file(job), button_form=EmptyForm(),
    )


@bp.get("/c/<int:convening_id>/print/jobs/<int:job_id>.pdf")
@allow(Permission.PRINT)
def print_job_pdf(convening_id: int, job_id: int):
    """Download a finished batch."""
    convening = convening_or_404(convening_id)
    job = _job(convening, job_id)
    response = storage.download(job.file_name, job.file_name) if job.status == "done" else None
    if response is None:
        abort(404)
    return response


@bp.post("/c/<int:convening_id>/print/jobs/<int:job_id>/printed")
@allow(Permission.PRINT, Permission.PRINT)
def mark_job_printed(convening_id: int, job_id: int):
    """Record that this batch's badges are printed (they leave the "not printed" list)."""
    convening = convening_or_404(convening_id)
    job = _job(convening, job_id)
    if not EmptyForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("admin.print_job", convening_id=convening.id, job_id=job.id))
    try:
        marked = service.mark_job_printed(job.id)
    except ConveneError as error:
        flash(error.message, "error")
        return redirect(url_for("admin.print_job", convening_id=convening.id, job_id=job.id))
    flash(ngettext("%(num)d badge marked printed.", "%(num)d badges marked printed.", marked), "success")
    return redirect(url_for("admin.print_queue", convening_id=convening.id))


@bp.post("/c/<int:convening_id>/print/jobs/<int:job_id>/retry")
@allow(Permission.PRINT, Permission.PRINT)
def retry_print_job(convening_id: int, job_id: int):
    """Render a failed background batch again, with the same people and choices."""
    convening = convening_or_404(convening_id)
    job = _job(convening, job_id)
    if not EmptyForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("admin.print_job", convening_id=convening.id, job_id=job.id))
    try:
        service.retry_print_job(job.id)
    except ConveneError as error:
        flash(error.message, "error")
    else:
        flash(_("The batch is queued again."), "success")
    return redirect(url_for("admin.print_job", convening_id=convening.id, job_id=job.id))


@bp.get("/c/<int:convening_id>/print/rosters.pdf")
@allow(Permission.PRINT)
def print_rosters(convening_id: int):
    """Every site visit's roster and sign-in sheet in one PDF."""
    convening = convening_or_404(convening_id)
    try:
        pdf = service.render_rosters_pdf(convening.id, paper=_paper())
    except ConveneError as error:
        flash(error.message, "error")
        return redirect(url_for("admin.print_queue", convening_id=convening.id))
    return _pdf_response(pdf, f"{convening.slug}-rosters.pdf")


@bp.get("/c/<int:convening_id>/print/rosters/<int:site_visit_id>.pdf")
@allow(Permission.PRINT)
def print_roster(convening_id: int, site_visit_id: int):
    """One site visit's roster and sign-in sheet."""
    convening = convening_or_404(convening_id)
    return _one_pdf(lambda: service.render_rosters_pdf(convening.id, site_visit_id, paper=_paper()),
                    f"{convening.slug}-roster-{site_visit_id}.pdf")


@bp.get("/c/<int:convening_id>/print/program.pdf")
@allow(Permission.PRINT)
def print_program(convening_id: int):
    """The program book: cover, contents, sessions day by day, the site-visit schedule."""
    convening = convening_or_404(convening_id)
    pdf = service.render_program_pdf(convening.id, paper=_paper())
    return _pdf_response(pdf, f"{convening.slug}-program.pdf")


@bp.get("/c/<int:convening_id>/print/agendas/<int:registration_id>.pdf")
@allow(Permission.PRINT)
def print_agenda(convening_id: int, registration_id: int):
    """One attendee's personal agenda."""
    convening = convening_or_404(convening_id)
    return _one_pdf(lambda: service.render_agenda_pdf(convening.id, registration_id, paper=_paper()),
                    f"{convening.slug}-agenda-{registration_id}.pdf")


@bp.post("/c/<int:convening_id>/print/agendas")
@allow(Permission.PRINT, Permission.PRINT)
def print_agendas(convening_id: int):
    """Every confirmed attendee's personal agenda in one PDF, for welcome packets (in the background when large)."""
    convening = convening_or_404(convening_id)
    if not EmptyForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("admin.print_queue", convening_id=convening.id))
    try:
        job = service.request_agenda_batch(convening.id, requested_by=current_user.email, paper=_paper(request.form))
    except ConveneError as error:
        flash(error.message, "error")
        return redirect(url_for("admin.print_queue", convening_id=convening.id))
    return redirect(url_for("admin.print_job", convening_id=convening.id, job_id=job.id))


def _paper(values=None) -> str:
    return "a4" if (values if values is not None else request.args).get("paper") == "a4" else "letter"


@bp.post("/c/<int:convening_id>/print/<any(program, rosters):document>")
@allow(Permission.PRINT, Permission.PRINT)
def queue_document(convening_id: int, document: str):
    """Make the program book or every roster on the background worker (a big convening's take minutes)."""
    convening = convening_or_404(convening_id)
    if not EmptyForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("admin.print_queue", convening_id=convening.id))
    try:
        job = service.request_document(convening.id, document, paper=_paper(request.form),
                                       requested_by=current_user.email)
    except ConveneError as error:
        flash(error.message, "error")
        return redirect(url_for("admin.print_queue", convening_id=convening.id))
    return redirect(url_for("admin.print_job", convening_id=convening.id, job_id=job.id))
