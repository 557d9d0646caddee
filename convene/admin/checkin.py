"""Check-in for desk staff and organizers: the lists to scan for, one scanning page per list, the scan endpoint.

The scanning page works as a plain form (each scan a POST answered with the result page) and, with
JavaScript, sends each scan as JSON to `checkin_scan_api` with an id made on the phone, so a scan sent
again after a dropped connection is answered with its first result.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from flask import abort, flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from convene.admin import bp
from convene.admin.access import allow
from convene.admin.util import convening_or_404
from convene.errors import ConveneError
from convene.forms import EmptyForm
from convene.permissions import Permission, can
from convene.security import content_security_policy
from convene.services import checkin as service

# The phone's own name for itself, kept in its storage; the no-JavaScript form uses the account instead.
MAX_DEVICE = 64


def _device_of(value) -> str:
    device = service.clean_code(value)[:MAX_DEVICE]
    return device or f"form-{current_user.id}"


def _scanned_at(value) -> datetime | None:
    """When the phone says it made the scan (it may have waited offline); anything unreadable is ignored."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None or not 2000 <= when.year <= 2100:
        return None
    return when.astimezone(timezone.utc)


def _may_undo(convening) -> bool:
    return can(current_user, Permission.REGISTRATIONS_EDIT, convening)


def _may_fix(convening) -> bool:
    """Whether the answer links to the desk page that corrects and reprints the person's badge."""
    return can(current_user, Permission.BADGES_EDIT, convening)


def _scan_page(convening, checkin_list, *, answer=None, code: str = "", error: str = "", status: int = 200):
    """The scanning page, with the answer to the last scan when there is one."""
    html = render_template(
        "admin/checkin/scan.html", convening=convening, checkin_list=checkin_list, answer=answer, code=code,
        error=error, scan_id=uuid.uuid4().hex, may_undo=_may_undo(convening), may_fix=_may_fix(convening),
        arrived=service.active_checkins(checkin_list.id), tz=convening.tz)
    response = make_response(html, status)
    # The camera polyfill compiles its WebAssembly reader; the rest of the site never needs that.
    policy = content_security_policy().replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", 1)
    response.headers["Content-Security-Policy"] = policy
    return response


@bp.get("/c/<int:convening_id>/checkin")
@allow(Permission.CHECKIN)
def checkin_index(convening_id: int):
    """The lists a desk can check people in on, the entrance first."""
    convening = convening_or_404(convening_id)
    lists = service.lists_of(convening.id)
    counts = {checkin_list.id: service.active_checkins(checkin_list.id) for checkin_list in lists}
    return render_template("admin/checkin/index.html", convening=convening, lists=lists, counts=counts)


@bp.route("/c/<int:convening_id>/checkin/<int:list_id>", methods=["GET", "POST"])
@allow(Permission.CHECKIN, Permission.CHECKIN)
def checkin_scan(convening_id: int, list_id: int):
    """Scan badges, type references or search names for one list; without JavaScript each scan is a POST."""
    convening = convening_or_404(convening_id)
    checkin_list = service.get_list(list_id, convening.id)
    if request.method == "GET":
        return _scan_page(convening, checkin_list)
    form = EmptyForm()
    if not form.validate_on_submit():
        return _scan_page(convening, checkin_list, error=_("Your session timed out; scan again."), status=400)
    code = request.form.get("code", "")
    try:
        answer = service.check_in(checkin_list.id, code, by=current_user._get_current_object(),
                                  device=_device_of(request.form.get("device")),
                                  scan_id=request.form.get("scan_id") or None, convening_id=convening.id)
    except ConveneError as error:
        return _scan_page(convening, checkin_list, error=error.message, status=422)
    return _scan_page(convening, checkin_list, answer=answer)


@bp.post("/c/<int:convening_id>/checkin/<int:list_id>/scan")
@allow(Permission.CHECKIN, Permission.CHECKIN)
def checkin_scan_api(convening_id: int, list_id: int):
    """One scan as JSON in ({code, scan_id, device, scanned_at}), its answer as JSON out."""
    convening = convening_or_404(convening_id)
    # Read now: the scan's unit of work ends this request's read transaction, and every row read so far with it.
    tz, may_undo, may_fix = convening.tz, _may_undo(convening), _may_fix(convening)
    user = current_user._get_current_object()
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("code", ""), str):
        return jsonify(error=_("Send a JSON object with the scanned code.")), 400
    scan_id = data.get("scan_id")
    try:
        answer = service.check_in(
            list_id, data.get("code", ""), by=user, device=_device_of(data.get("device")),
            scan_id=scan_id if isinstance(scan_id, str) else None, scanned_at=_scanned_at(data.get("scanned_at")),
            convening_id=convening_id)
    except ConveneError as error:
        return jsonify(error=error.message, code=error.code), error.status_code if error.status_code == 404 else 422
    body = answer.as_json(tz)
    body["arrived"] = service.active_checkins(list_id)
    if answer.checkin_id and answer.result in (service.ScanResult.CHECKED_IN, service.ScanResult.ALREADY) \
            and may_undo:
        body["undo_url"] = url_for("admin.checkin_revert", convening_id=convening_id, checkin_id=answer.checkin_id)
    if answer.person and may_fix:
        body["fix_url"] = url_for("admin.checkin_desk_person", convening_id=convening_id,
                                  registration_id=answer.person.registration_id)
    return jsonify(body)


@bp.post("/c/<int:convening_id>/checkin/undo/<int:checkin_id>")
@allow(Permission.CHECKIN, Permission.REGISTRATIONS_EDIT)
def checkin_revert(convening_id: int, checkin_id: int):
    """Undo a check-in (organizers): it stays in the history, and the person can be checked in again."""
    convening = convening_or_404(convening_id)
    wants_json = request.is_json or request.accept_mimetypes.best == "application/json"
    if not wants_json and not EmptyForm().validate_on_submit():
        flash(_("Your session timed out, so nothing was undone. Try again."), "error")
        return redirect(url_for("admin.checkin_index", convening_id=convening.id))
    try:
        undone = service.revert_check_in(checkin_id, by=current_user._get_current_object(),
                                         convening_id=convening.id, device=_device_of(request.headers.get(
                                             "X-Convene-Device")))
    except ConveneError as error:
        if wants_json:
            return jsonify(error=error.message, code=error.code), error.status_code
        if error.status_code == 404:
            abort(404)
        flash(error.message, "error")
        return redirect(url_for("admin.checkin_index", convening_id=convening.id))
    message = f"Check-in of {undone.registration.full_name} undone."
    if wants_json:
        return jsonify(result="reverted", headline="Check-in undone", reason=message,
                       arrived=service.active_checkins(undone.list_id))
    flash(message, "success")
    return redirect(url_for("admin.checkin_scan", convening_id=convening.id, list_id=undone.list_id))
