"""Site visits in the back office: setup, preference coverage, the assigner, the plan, publishing, rosters.

Organizers change things; staff may look at the overview, the coverage, the plan and the rosters.
"""
from __future__ import annotations

import re
from collections import Counter

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from convene.admin import bp
from convene.admin.access import allow
from convene.admin.confirm import confirm_deletion
from convene.permissions import Permission
from convene.admin.util import child_or_404, convening_or_404, int_arg, show_error, text_arg
from convene.admin.visit_forms import (
    AssignForm,
    HostForm,
    MoveForm,
    SiteVisitForm,
    SlotForm,
    UnlockForm,
    VisitSettingsForm,
    grid_data,
    visit_grid_form,
)
from convene.errors import ConveneError
from convene.extensions import db
from convene.forms import RANK_LABELS, EmptyForm
from convene.models import AssignmentRun, Convening, HostOrganization, Registration, SiteVisit, VisitSlot
from convene.services import visits as service

PEOPLE_PER_PAGE = 50
PLAN_ARGS = ("page", "delegation", "q")
MAX_PAGE = 100_000  # past the last page shows an empty one; the bound keeps OFFSET inside every database











def _csv_response(text: str, filename: str) -> Response:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", filename)
    return Response(text.encode("utf-8"), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename={safe}"})


def rank_labels(profile_length: int) -> list[str]:
    """Column heads of a rank profile: 1st choice, 2nd choice, ..., Unranked."""
    ranks = max(profile_length - 1, 0)
    return [str(RANK_LABELS[n]) if n < len(RANK_LABELS) else _("%(rank)sth choice", rank=n + 1)
            for n in range(ranks)] + [_("Unranked")]


def profile_text(profile) -> str:
    """A rank profile in one line, leaving out ranks nobody got: "1st choice: 10; Unranked: 2"."""
    labels = rank_labels(len(profile or []))
    return "; ".join(f"{label}: {n}" for label, n in zip(labels, profile or []) if n) or "—"


# -- overview and settings -------------------------------------------------------------------------

def _overview(convening: Convening, settings_form: VisitSettingsForm):
    visits = sorted(service.visits_of(convening.id), key=lambda v: (v.slot.starts_at, v.host.name.lower()))
    return render_template(
        "admin/visits/index.html", convening=convening, settings_form=settings_form,
        hosts=service.hosts_of(convening.id), slots=service.slots_of(convening.id), visits=visits,
        loads=service.visit_loads(convening.id), visitors=len(service.visitors_of(convening.id)),
        to_notify=service.people_to_notify(convening.id) if convening.visits_published_at else None,
        conflicts=service.step_free_conflicts(convening.id),
    )


@bp.get("/c/<int:convening_id>/visits")
@allow(Permission.VISITS_VIEW)
def visits(convening_id: int):
    """Site visits at a glance: settings, hosts, slots, visits with their rosters, and the next steps."""
    convening = convening_or_404(convening_id)
    return _overview(convening, VisitSettingsForm.for_convening(convening))


@bp.post("/c/<int:convening_id>/visits/settings")
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_settings(convening_id: int):
    """Set the visits per person and open or close preferences."""
    convening = convening_or_404(convening_id)
    form = VisitSettingsForm()
    if form.validate_on_submit():
        try:
            service.update_visit_settings(convening.id, form.visits_per_person.data, form.preferences_open.data)
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The site-visit settings are saved."), "success")
            return redirect(url_for("admin.visits", convening_id=convening.id))
    return _overview(convening, form)


# -- hosts -----------------------------------------------------------------------------------------

def _save_host_view(convening: Convening, host: HostOrganization | None):
    form = HostForm() if request.method == "POST" else (HostForm.for_host(host) if host else HostForm())
    if form.validate_on_submit():
        try:
            saved = service.save_host(convening.id, form.host_data(), host_id=host.id if host else None)
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("%(name)s is saved.", name=saved.name) if host else _("%(name)s is added.", name=saved.name),
                  "success")
            if host and not saved.accessible:
                stuck = [r for r, v in service.step_free_conflicts(convening.id) if v.host_id == saved.id]
                if stuck:
                    flash(_("%(count)s placed here need step-free access: move them or re-run the assigner.",
                            count=len(stuck)), "warning")
            return redirect(url_for("admin.visits", convening_id=convening.id, _anchor="hosts"))
    return render_template("admin/visits/host_form.html", convening=convening, form=form, host=host)


@bp.route("/c/<int:convening_id>/visits/hosts/new", methods=["GET", "POST"])
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_host_new(convening_id: int):
    """Add a host organization."""
    return _save_host_view(convening_or_404(convening_id), None)


@bp.route("/c/<int:convening_id>/visits/hosts/<int:host_id>", methods=["GET", "POST"])
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_host_edit(convening_id: int, host_id: int):
    """Change a host organization."""
    convening = convening_or_404(convening_id)
    return _save_host_view(convening, child_or_404(HostOrganization, convening, host_id))


@bp.route("/c/<int:convening_id>/visits/hosts/<int:host_id>/delete", methods=["GET", "POST"])
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_host_delete(convening_id: int, host_id: int):
    """Say what goes with a host (its visits, who leaves the working plan, rankings), then delete it on confirmation."""
    convening = convening_or_404(convening_id)
    host = child_or_404(HostOrganization, convening, host_id)
    return confirm_deletion(convening, lambda: service.host_deletion(host.id),
                            lambda token: service.delete_host(host.id, expected=token),
                            back=url_for("admin.visit_host_edit", convening_id=convening.id, host_id=host.id),
                            after=url_for("admin.visits", convening_id=convening.id, _anchor="hosts"))


# -- slots -----------------------------------------------------------------------------------------

def _save_slot_view(convening: Convening, slot: VisitSlot | None):
    if request.method == "POST":
        form = SlotForm()
    else:
        form = SlotForm.for_slot(slot, convening) if slot else SlotForm()
    if form.validate_on_submit():
        try:
            saved = service.save_slot(convening.id, form.slot_data(), slot_id=slot.id if slot else None)
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("Slot %(label)s is saved.", label=saved.label) if slot
                  else _("Slot %(label)s is added.", label=saved.label), "success")
            return redirect(url_for("admin.visits", convening_id=convening.id, _anchor="slots"))
    return render_template("admin/visits/slot_form.html", convening=convening, form=form, slot=slot)


@bp.route("/c/<int:convening_id>/visits/slots/new", methods=["GET", "POST"])
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_slot_new(convening_id: int):
    """Add a visit slot."""
    return _save_slot_view(convening_or_404(convening_id), None)


@bp.route("/c/<int:convening_id>/visits/slots/<int:slot_id>", methods=["GET", "POST"])
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_slot_edit(convening_id: int, slot_id: int):
    """Change a visit slot."""
    convening = convening_or_404(convening_id)
    return _save_slot_view(convening, child_or_404(VisitSlot, convening, slot_id))


@bp.route("/c/<int:convening_id>/visits/slots/<int:slot_id>/delete", methods=["GET", "POST"])
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_slot_delete(convening_id: int, slot_id: int):
    """Say what goes with a slot (its visits, who leaves the working plan), then delete it on confirmation."""
    convening = convening_or_404(convening_id)
    slot = child_or_404(VisitSlot, convening, slot_id)
    return confirm_deletion(convening, lambda: service.slot_deletion(slot.id),
                            lambda token: service.delete_slot(slot.id, expected=token),
                            back=url_for("admin.visit_slot_edit", convening_id=convening.id, slot_id=slot.id),
                            after=url_for("admin.visits", convening_id=convening.id, _anchor="slots"))


# -- site visits -----------------------------------------------------------------------------------

@bp.route("/c/<int:convening_id>/visits/grid", methods=["GET", "POST"])
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_grid(convening_id: int):
    """Which host takes visitors in which slot, and how many: one capacity per cell."""
    convening = convening_or_404(convening_id)
    hosts, slots = service.hosts_of(convening.id), service.slots_of(convening.id)
    visits = service.visits_of(convening.id)
    form_class = visit_grid_form(hosts, slots)
    form = form_class() if request.method == "POST" else form_class(data=grid_data(visits))
    asks_confirmation = False
    if form.validate_on_submit():
        try:
            result = service.save_visit_grid(convening.id, form.capacities(),
                                             confirm_removals=form.confirm_removals.data)
        except ConveneError as error:
            show_error(form, error)
            asks_confirmation = any(p.code == "visit_in_use" for p in error.details.get("problems", [error]))
        else:
            flash(_("The visits are saved: %(added)s added, %(changed)s changed, %(removed)s removed.",
                    added=result.added, changed=result.changed, removed=result.removed), "success")
            for visit, load in result.over_capacity:
                flash(_("%(host)s in %(slot)s now has %(load)s people for %(places)s places: re-run the assigner "
                        "(or move people by hand).", host=visit.host.name, slot=visit.slot.label, load=load,
                        places=visit.capacity), "warning")
            return redirect(url_for("admin.visit_grid", convening_id=convening.id))
    return render_template("admin/visits/grid.html", convening=convening, form=form, hosts=hosts, slots=slots,
                           visits={(v.host_id, v.slot_id): v for v in visits}, loads=service.visit_loads(convening.id),
                           asks_confirmation=asks_confirmation)


@bp.route("/c/<int:convening_id>/visits/<int:visit_id>/edit", methods=["GET", "POST"])
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_edit(convening_id: int, visit_id: int):
    """Change one visit's capacity, meeting point, departure time and transport notes."""
    convening = convening_or_404(convening_id)
    visit = child_or_404(SiteVisit, convening, visit_id)
    form = SiteVisitForm() if request.method == "POST" else SiteVisitForm.for_visit(visit, convening)
    if form.validate_on_submit():
        try:
            saved = service.save_site_visit(visit.id, form.visit_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("%(host)s in %(slot)s is saved.", host=saved.host.name, slot=saved.slot.label), "success")
            load = service.visit_loads(convening.id).get(saved.id, 0)
            if load > saved.capacity:
                flash(_("%(load)s people are placed here for %(places)s places: re-run the assigner (or move people by "
                        "hand).", load=load, places=saved.capacity), "warning")
            return redirect(url_for("admin.visits", convening_id=convening.id, _anchor="visits"))
    return render_template("admin/visits/visit_form.html", convening=convening, form=form, visit=visit)


@bp.route("/c/<int:convening_id>/visits/<int:visit_id>/delete", methods=["GET", "POST"])
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_delete(convening_id: int, visit_id: int):
    """Say who leaves the working plan with one visit, then delete it on confirmation."""
    convening = convening_or_404(convening_id)
    visit = child_or_404(SiteVisit, convening, visit_id)
    return confirm_deletion(convening, lambda: service.visit_deletion(visit.id),
                            lambda token: service.delete_site_visit(visit.id, expected=token),
                            back=url_for("admin.visit_edit", convening_id=convening.id, visit_id=visit.id),
                            after=url_for("admin.visits", convening_id=convening.id, _anchor="visits"))


# -- coverage --------------------------------------------------------------------------------------

@bp.get("/c/<int:convening_id>/visits/coverage")
@allow(Permission.VISITS_VIEW)
def visit_coverage(convening_id: int):
    """Who ranked the hosts, how each host was ranked, and places against people per slot."""
    convening = convening_or_404(convening_id)
    coverage = service.preference_coverage(convening)
    return render_template("admin/visits/coverage.html", convening=convening, coverage=coverage,
                           rank_heads=rank_labels(coverage.ranks + 1)[:-1])


# -- the assigner ----------------------------------------------------------------------------------

@bp.route("/c/<int:convening_id>/visits/assign", methods=["GET", "POST"])
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_assign(convening_id: int):
    """Run the assigner as a preview or for real, and compare with earlier runs."""
    convening = convening_or_404(convening_id)
    if request.method == "POST":
        form = AssignForm()
    else:
        form = AssignForm(data={"keep_published": convening.visits_published_at is not None})
    shown: AssignmentRun | None = None
    if form.validate_on_submit():
        dry_run = not form.save.data
        if not dry_run and service.assign_in_background(convening.id):
            job = service.request_assignment(convening.id, keep_published=form.keep_published.data,
                                             mix_limit=form.mix_limit.data, run_by=current_user.email,
                                             requested_by=current_user.id)
            flash(_("The assigner is running in the background; this page shows when the plan is saved."), "success")
            return redirect(url_for("admin.job", convening_id=convening.id, job_id=job.id))
        try:
            result = service.assign_site_visits(
                convening.id, dry_run=dry_run, keep_published=form.keep_published.data,
                mix_limit=form.mix_limit.data, run_by=current_user.email,
            )
        except ConveneError as error:
            flash(error.message, "error")
        else:
            if result.saved:
                flash(_("The plan is saved as the working plan (%(changed)s places changed). Check it, then publish it "
                        "to email everyone.", changed=result.changed), "success")
                return redirect(url_for("admin.visit_assign", convening_id=convening.id, run=result.run.id))
            shown = result.run
    elif request.method == "GET" and (run_id := int_arg("run")):
        shown = db.session.get(AssignmentRun, run_id)
        if shown is None or shown.convening_id != convening.id:
            abort(404)
    runs = service.assignment_runs(convening.id)
    names = service.registrations_by_id(
        item["registration_id"] for run in [*runs, *([shown] if shown else [])] for item in run.unassigned or []
    )
    return render_template("admin/visits/assign.html", convening=convening, form=form, shown=shown, runs=runs,
                           names=names, rank_labels=rank_labels, profile_text=profile_text,
                           preview=shown is not None and shown.id is None)


# -- the plan --------------------------------------------------------------------------------------

def _plan_args() -> dict:
    """The plan page's own query arguments (page, delegation, search), to come back to the same view."""
    return {k: v for k in PLAN_ARGS if (v := text_arg(k))}


def _delegation_arg(value: str | None) -> int | str | None:
    if value == "none":
        return "none"
    return int(value) if value and re.fullmatch(r"[0-9]{1,9}", value) else None


@bp.get("/c/<int:convening_id>/visits/plan")
@allow(Permission.VISITS_VIEW)
def visit_plan(convening_id: int):
    """The working plan: load and mix per visit, unranked visits, everyone's visits (move forms for organizers)."""
    convening = convening_or_404(convening_id)  # staff may read it; moving and publishing stay organizers'
    report = service.plan_report(convening)
    hosts, slots = service.hosts_of(convening.id), service.slots_of(convening.id)
    visits = {v.id: v for v in service.visits_of(convening.id)}
    by_cell = {(v.host_id, v.slot_id): v for v in visits.values()}
    top = {vid: max(mix.values()) for vid, mix in report.group_mix.items() if mix}
    options = {
        s.id: sorted(((v.id, f"{v.host.name} ({report.load.get(v.id, 0)}/{v.capacity})"
                       + ("" if v.host.accessible else " · " + _("steps")))
                      for v in visits.values() if v.slot_id == s.id), key=lambda o: o[1].lower())
        for s in slots
    }
    args = _plan_args()
    page = db.paginate(
        service.visitors_select(convening.id, delegation=_delegation_arg(args.get("delegation")),
                                search=args.get("q", "")),
        page=int_arg("page", 1, maximum=MAX_PAGE), per_page=PEOPLE_PER_PAGE, error_out=False, count=True,
    )
    return render_template(
        "admin/visits/plan.html", convening=convening, report=report, hosts=hosts, slots=slots, visits=visits,
        by_cell=by_cell, top=top, options=options, page=page, rows=service.assignments_for(r.id for r in page.items),
        args=args, rank_heads=rank_labels(len(report.rank_profile)), mix_sorted=_mix_sorted,
        to_notify=service.people_to_notify(convening.id),
    )


def _mix_sorted(mix: Counter) -> list[tuple[str, int]]:
    return sorted(mix.items(), key=lambda kv: (-kv[1], kv[0].lower()))


def _back_to_plan(convening: Convening, registration_id: int | None = None):
    return redirect(url_for("admin.visit_plan", convening_id=convening.id, **_plan_args(),
                            _anchor=f"person-{registration_id}" if registration_id else None))


def _person(convening: Convening, registration_id: int) -> Registration:
    registration = db.session.get(Registration, registration_id)
    if registration is None or registration.convening_id != convening.id:
        abort(404)
    return registration


@bp.post("/c/<int:convening_id>/visits/move")
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_move(convening_id: int):
    """Put a person in a visit by hand (capacity, access and distinct hosts checked), locked by default."""
    convening = convening_or_404(convening_id)
    form = MoveForm()
    if not form.validate_on_submit():
        flash(_("That move was not understood; reload the page and try again."), "error")
        return _back_to_plan(convening)
    registration = _person(convening, form.registration_id.data)
    name = registration.full_name
    try:
        service.move_visitor(registration.id, form.slot_id.data, form.site_visit_id.data, locked=form.locked.data)
    except ConveneError as error:
        flash(error.message, "error")
    else:
        visit = db.session.get(SiteVisit, form.site_visit_id.data) if form.site_visit_id.data else None
        slot = db.session.get(VisitSlot, form.slot_id.data)
        if visit is None:
            said = _("%(name)s is taken out of their visit in %(slot)s.", name=name, slot=slot.label)
        elif form.locked.data:
            said = _("%(name)s is moved to %(host)s in %(slot)s and locked.", name=name, host=visit.host.name,
                     slot=slot.label)
        else:
            said = _("%(name)s is moved to %(host)s in %(slot)s.", name=name, host=visit.host.name, slot=slot.label)
        flash(said, "success")
    return _back_to_plan(convening, registration.id)


@bp.post("/c/<int:convening_id>/visits/unlock")
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_unlock(convening_id: int):
    """Let the assigner move a person in a slot again."""
    convening = convening_or_404(convening_id)
    form = UnlockForm()
    if not form.validate_on_submit():
        flash(_("That request was not understood; reload the page and try again."), "error")
        return _back_to_plan(convening)
    registration = _person(convening, form.registration_id.data)
    slot = child_or_404(VisitSlot, convening, form.slot_id.data)
    service.unlock_visitor(registration.id, slot.id)
    flash(_("%(name)s is unlocked in %(slot)s: the next run may move them.", name=registration.full_name,
            slot=slot.label), "success")
    return _back_to_plan(convening, registration.id)


# -- publishing ------------------------------------------------------------------------------------

@bp.route("/c/<int:convening_id>/visits/publish", methods=["GET", "POST"])
@allow(Permission.VISITS_MANAGE, Permission.VISITS_MANAGE)
def visit_publish(convening_id: int):
    """Preview exactly who is emailed and what changed for each, then publish that on confirmation."""
    convening = convening_or_404(convening_id)
    form = EmptyForm()
    if form.validate_on_submit():
        try:
            # The token names the previewed set: if it changed meanwhile, nothing is published or sent.
            published = service.publish_plan(convening.id, expected=request.form.get("preview", ""),
                                              requested_by=current_user.id)
        except ConveneError as error:
            flash(error.message, "error")
        else:
            emailed = published.emailed
            if published.written or not emailed:
                flash(ngettext("The plan is published; %(num)d person was emailed what changed in their visits.",
                               "The plan is published; %(num)d people were emailed what changed in their visits.",
                               emailed), "success")
            else:
                flash(ngettext("The plan is published. The emails to %(num)d person about what changed in their visits "
                               "are being written and sent in the background; the dashboard shows if any could not be.",
                               "The plan is published. The emails to %(num)d people about what changed in their "
                               "visits are being written and sent in the background; the dashboard shows if any could "
                               "not be.", emailed), "success")
            return redirect(url_for("admin.visit_plan", convening_id=convening.id))
    report = service.plan_report(convening)
    preview = service.publish_preview(convening.id)
    return render_template("admin/visits/publish.html", convening=convening, form=form, report=report,
                           preview=preview, to_notify=len(preview.people))


# -- rosters ---------------------------------------------------------------------------------------

@bp.get("/c/<int:convening_id>/visits/<int:visit_id>/roster")
@allow(Permission.VISITS_VIEW)
def visit_roster(convening_id: int, visit_id: int):
    """One visit's roster to print: the practical details, then the people with a signature column."""
    convening = convening_or_404(convening_id)
    visit = child_or_404(SiteVisit, convening, visit_id)
    return render_template("admin/visits/roster.html", convening=convening, visit=visit,
                           people=service.visit_roster(visit.id), access_labels=service.access_labels,
                           unpublished=service.people_to_notify(convening.id) if convening.visits_published_at else 0)


@bp.get("/c/<int:convening_id>/visits/<int:visit_id>/roster.csv")
@allow(Permission.VISITS_VIEW)
def visit_roster_csv(convening_id: int, visit_id: int):
    """One visit's roster as a spreadsheet."""
    convening = convening_or_404(convening_id)
    visit = child_or_404(SiteVisit, convening, visit_id)
    return _csv_response(service.rosters_csv(convening, visit.id),
                         f"{convening.slug}-roster-{visit.slot.label}-{visit.host.name}.csv")


@bp.get("/c/<int:convening_id>/visits/rosters.csv")
@allow(Permission.VISITS_VIEW)
def visit_rosters_csv(convening_id: int):
    """Every visit's roster in one spreadsheet: one row per person per visit."""
    convening = convening_or_404(convening_id)
    return _csv_response(service.rosters_csv(convening), f"{convening.slug}-visit-rosters.csv")
