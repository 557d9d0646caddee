"""Check-in numbers: live per list for the desk lead (refreshed by polling a fragment), and the attendance report."""
from __future__ import annotations

import re

from flask import Response, abort, render_template

from convene.admin import bp
from convene.admin.access import allow
from convene.admin.util import convening_or_404
from convene.errors import ConveneError
from convene.models import CheckinList, Convening
from convene.permissions import Permission
from convene.services import checkin
from convene.services import checkin_reports as service

REFRESH_SECONDS = 10


def _list(convening: Convening, list_id: int) -> CheckinList:
    try:
        return checkin.get_list(list_id, convening.id)
    except ConveneError:
        abort(404)


def _download(body: bytes, content_type: str, filename: str) -> Response:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", filename)
    return Response(body, content_type=content_type, headers={"Content-Disposition": f"attachment; filename={safe}"})


def _live_context(convening: Convening, checkin_list: CheckinList) -> dict:
    return {"convening": convening, "checkin_list": checkin_list, "live": service.live_numbers(checkin_list),
            "waiting": service.not_arrived(checkin_list), "refresh_seconds": REFRESH_SECONDS}


@bp.get("/c/<int:convening_id>/checkin/lists/<int:list_id>/live")
@allow(Permission.CHECKIN)
def checkin_live(convening_id: int, list_id: int):
    """Arrived / expected on one list, by delegation and ticket type, over time, and who has not come yet."""
    convening = convening_or_404(convening_id)
    checkin_list = _list(convening, list_id)
    return render_template("admin/checkin/live.html", **_live_context(convening, checkin_list))


@bp.get("/c/<int:convening_id>/checkin/lists/<int:list_id>/live/numbers")
@allow(Permission.CHECKIN)
def checkin_live_numbers(convening_id: int, list_id: int):
    """The live page's numbers alone, as an HTML fragment the page polls for."""
    convening = convening_or_404(convening_id)
    checkin_list = _list(convening, list_id)
    return render_template("admin/checkin/live_numbers.html", **_live_context(convening, checkin_list))


@bp.get("/c/<int:convening_id>/checkin/lists/<int:list_id>/no-shows.csv")
@allow(Permission.CHECKIN)
def checkin_no_shows_csv(convening_id: int, list_id: int):
    """Everyone a list expected who has not checked in on it, with email and phone."""
    convening = convening_or_404(convening_id)
    checkin_list = _list(convening, list_id)
    text = service.no_shows_csv(checkin_list)
    return _download(text.encode("utf-8"), "text/csv; charset=utf-8",
                     f"{convening.slug}-no-shows-{checkin_list.id}.csv")


@bp.get("/c/<int:convening_id>/checkin/attendance.csv")
@allow(Permission.CHECKIN)
def checkin_attendance_csv(convening_id: int):
    """One row per person: the time they checked in on each list."""
    convening = convening_or_404(convening_id)
    return _download(service.attendance_csv(convening).encode("utf-8"), "text/csv; charset=utf-8",
                     f"{convening.slug}-attendance.csv")


@bp.get("/c/<int:convening_id>/checkin/report")
@allow(Permission.REGISTRATIONS_VIEW)
def checkin_report(convening_id: int):
    """Attendance for the funder's report: the entrance by delegation and organization, and every list."""
    convening = convening_or_404(convening_id)
    return render_template("admin/checkin/report.html", convening=convening,
                           summary=service.attendance_summary(convening))


@bp.get("/c/<int:convening_id>/checkin/report.pdf")
@allow(Permission.REGISTRATIONS_VIEW)
def checkin_report_pdf(convening_id: int):
    """The attendance summary as a PDF."""
    convening = convening_or_404(convening_id)
    return _download(service.attendance_summary_pdf(convening), "application/pdf",
                     f"{convening.slug}-attendance.pdf")
