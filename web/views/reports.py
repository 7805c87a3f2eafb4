"""The monthly handling-status report (section 10): on screen, as CSV and as PDF.

The report itself is ``db.reports.monthly.build_monthly_report``; the CSV and PDF are the
same renderings as the ``nyutai report monthly`` command. Downloads are audited.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import cast

from flask import Blueprint, Response, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select

from db.checkpoints import SigningKeyError, load_key, public_hex, trusted_file
from db.controllers import controller_codes, event_chains
from db.models import Area, Event
from db.reports.monthly import MonthlyReport, ReportError, build_monthly_report
from db.types import utcnow
from web.audit import audit
from web.db import get_session, session_factory
from web.i18n import site_zone
from web.report_jobs import REPORT_BUILDS_DIR, WAIT, ReportJob, ReportJobs, SharedBuilds
from web.roles import requires

log = logging.getLogger(__name__)
bp = Blueprint("reports", __name__, url_prefix="/reports")

MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
AREA_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def last_month(now: datetime) -> str:
    """The calendar month before ``now``'s month, in the site's zone."""
    local = now.astimezone(site_zone())
    y, m = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{y:04d}-{m:02d}"


def public_keys() -> list[str]:
    """The checkpoint public key(s): from the signing key file, else its trusted list.

    The web user may not be allowed to read the private key (it belongs to the
    controller); the ``*-trusted.pub`` list beside it has the same public keys.
    """
    cfg = current_app.config.get("NYUTAI_SITE")
    if cfg is None:
        return []
    key_path: Path = cfg.data_path(cfg.evidence.key_file)
    try:
        return [public_hex(load_key(key_path))]
    except (SigningKeyError, OSError):
        pass
    try:
        lines = trusted_file(key_path).read_text(encoding="ascii").splitlines()
    except OSError:
        return []
    return [ln.strip() for ln in lines if ln.strip()][-1:]


def _params() -> tuple[str, str, str, str | None]:
    """(month, area code, controller id, error message) from the query; a bad value falls
    back, named. An empty area or controller: all of them."""
    month = request.args.get("month", "").strip()
    area = request.args.get("area", "").strip()
    controller = request.args.get("controller", "").strip()
    error = None
    if not month:
        month = last_month(utcnow())
    elif not MONTH.fullmatch(month):
        error = _("The month must be written as YYYY-MM (e.g. 2026-04).")
        month = last_month(utcnow())
    if area and not AREA_CODE.fullmatch(area):
        error, area = _("There is no such managed area."), ""
    if controller and not AREA_CODE.fullmatch(controller):
        error, controller = _("There is no such controller."), ""
    return month, area, controller, error


def _jobs() -> ReportJobs:
    jobs = current_app.extensions.get("nyutai_report_jobs")
    if jobs is None:
        # console processes of one site share each build (web.report_jobs)
        cfg = current_app.config.get("NYUTAI_SITE")
        shared = SharedBuilds(cfg.data_path(REPORT_BUILDS_DIR)) if cfg else None
        jobs = current_app.extensions.setdefault("nyutai_report_jobs", ReportJobs(shared))
    return cast(ReportJobs, jobs)


def _job(month: str, area: str, controller: str, wait: float | None = None) -> ReportJob:
    """The report of ``month`` (one area or all, one controller or all), built off the
    request thread: finished within ``wait`` seconds, or still running with its progress."""
    cfg = current_app.config.get("NYUTAI_SITE")
    zone = site_zone()
    site_name = cfg.site.name if cfg else "nyutai"
    keys = public_keys()
    factory = session_factory()

    def build(progress: Callable[[int, int, str], None]) -> MonthlyReport:
        with factory() as s:
            report = build_monthly_report(
                s,
                month,
                zone=zone,
                area_codes=[area] if area else None,
                site_name=site_name,
                public_keys=keys,
                progress=progress,
                controllers=[controller] if controller else None,
            )
            s.commit()  # the occupancy snapshots it stored: the next month starts there
            return report

    # the log's first row names the database: a demo reset or a restored copy in the same
    # data directory does not reuse a report another process built (SharedBuilds)
    origin = get_session().scalar(select(Event.hash).order_by(Event.id).limit(1)) or ""
    key = (month, area, controller, zone.key, site_name, origin)
    return _jobs().get(key, build, WAIT if wait is None else wait)


def _build(month: str, area: str, controller: str) -> MonthlyReport:
    """For the downloads: the page's report when it is ready, else built now."""
    job = _job(month, area, controller)
    if job.finished is None and job.future is not None:
        job.future.result()  # a download waits for the build (the page shows its progress)
    if job.error is not None:
        raise job.error
    assert job.report is not None
    return job.report


def _file_name(month: str, area: str, controller: str, ext: str) -> str:
    parts = [p for p in (month, area, controller) if p]
    return f"nyutai-monthly-{'-'.join(parts)}.{ext}"


def _disposition(month: str, area: str, controller: str, ext: str) -> str:
    return f'attachment; filename="{_file_name(month, area, controller, ext)}"'


def _refusal(exc: ReportError) -> str:
    if "controller" in str(exc):
        return _("There is no such controller.")
    return _("There is no such managed area.")


@bp.route("/monthly")
@requires("reports.view")
def monthly() -> ResponseReturnValue:
    month, area, controller, error = _params()
    db = get_session()
    areas = db.scalars(select(Area).order_by(Area.code)).all()
    controllers = sorted(set(controller_codes(db)) | set(event_chains(db)))
    job = _job(month, area, controller)
    if isinstance(job.error, ReportError):
        error = _refusal(job.error)
    elif job.error is not None:
        raise job.error
    return render_template(
        "report_monthly.html",
        report=job.report,
        job=job,
        month=month,
        area=area,
        areas=areas,
        controller=controller,
        controllers=controllers,
        error=error,
    )


def _refuse(message: str, code: int) -> ResponseReturnValue:
    return render_template("error.html", code=code, message=message), code


@bp.route("/monthly.csv")
@requires("reports.view")
def monthly_csv() -> ResponseReturnValue:
    from db.reports.monthly_csv import monthly_csv as render_csv

    month, area, controller, error = _params()
    if error:
        return _refuse(error, 400)
    try:
        report = _build(month, area, controller)
    except ReportError as exc:
        return _refuse(_refusal(exc), 400)
    body = render_csv(report).encode("utf-8-sig")  # the BOM makes Excel read UTF-8
    audit(
        "report.monthly_csv",
        "report",
        month,
        after={"month": month, "area": area or None, "controller": controller or None},
    )
    get_session().commit()
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": _disposition(month, area, controller, "csv")},
    )


@bp.route("/monthly.pdf")
@requires("reports.view")
def monthly_pdf() -> ResponseReturnValue:
    from db.reports.fonts import FontMissingError
    from db.reports.monthly_pdf import monthly_pdf as render_pdf

    month, area, controller, error = _params()
    if error:
        return _refuse(error, 400)
    try:
        report = _build(month, area, controller)
    except ReportError as exc:
        return _refuse(_refusal(exc), 400)
    try:
        body = render_pdf(report)
    except FontMissingError as exc:
        log.error("monthly PDF not made: %s", exc)
        return _refuse(
            _(
                "The PDF cannot be made: no Japanese font is installed on the server. "
                "Ask the administrator to install the fonts-ipaexfont-gothic package "
                "(or set NYUTAI_PDF_FONT). The CSV download works without it."
            ),
            503,
        )
    audit(
        "report.monthly_pdf",
        "report",
        month,
        after={"month": month, "area": area or None, "controller": controller or None},
    )
    get_session().commit()
    return Response(
        body,
        mimetype="application/pdf",
        headers={"Content-Disposition": _disposition(month, area, controller, "pdf")},
    )
