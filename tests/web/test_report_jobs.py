"""Console processes share one monthly-report build through the data directory
(web.report_jobs.SharedBuilds): the second process follows the first one's build."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.reports.monthly import MonthlyReport, build_monthly_report
from web import report_jobs
from web.report_jobs import ReportJob, ReportJobs, SharedBuilds

KEY = ("2026-11", "", "", "Asia/Tokyo", "site")
Progress = Callable[[int, int, str], None]


@pytest.fixture
def report(session_factory: sessionmaker[Session]) -> MonthlyReport:
    with session_factory() as s:
        return build_monthly_report(s, "2026-11", zone=ZoneInfo("Asia/Tokyo"), site_name="A")


def _finished(job: ReportJob, timeout: float = 10.0) -> ReportJob:
    assert job.future is not None
    job.future.result(timeout)
    return job


def _never(_progress: Progress) -> MonthlyReport:
    raise AssertionError("a second build of the same report")


def test_a_second_process_follows_the_build_of_the_first(
    tmp_path: Path, report: MonthlyReport
) -> None:
    first, second = ReportJobs(SharedBuilds(tmp_path)), ReportJobs(SharedBuilds(tmp_path))
    go, entered = threading.Event(), threading.Event()

    def slow(progress: Progress) -> MonthlyReport:
        progress(3, 10, "people")
        entered.set()
        go.wait(10)
        return report

    building = first.get(KEY, slow, wait=0)
    assert entered.wait(10)  # the first holds the lock now (the builds start on threads)
    assert building.finished is None
    following = second.get(KEY, _never, wait=0)
    assert following.finished is None and following.report is None
    deadline = time.monotonic() + 5
    while following.done_steps != 3:  # the builder's progress, shown by the follower
        assert time.monotonic() < deadline
        time.sleep(0.05)
    go.set()
    got = _finished(following).report
    assert got is not None and got.site_name == "A" and got.month == report.month
    assert _finished(building).report is report


def test_a_failed_build_is_tried_again_by_the_follower(
    tmp_path: Path, report: MonthlyReport
) -> None:
    first, second = ReportJobs(SharedBuilds(tmp_path)), ReportJobs(SharedBuilds(tmp_path))
    go, entered = threading.Event(), threading.Event()

    def failing(_progress: Progress) -> MonthlyReport:
        entered.set()
        go.wait(10)
        raise RuntimeError("database went away")

    building = first.get(KEY, failing, wait=0)
    assert entered.wait(10)
    following = second.get(KEY, lambda _p: report, wait=0)
    go.set()
    assert isinstance(_finished(building).error, RuntimeError)
    assert _finished(following).report is report


def test_a_restarted_process_reads_a_fresh_report_and_rebuilds_an_old_one(
    tmp_path: Path, report: MonthlyReport
) -> None:
    shared = SharedBuilds(tmp_path)
    _finished(ReportJobs(shared).get(KEY, lambda _p: report))
    got = _finished(ReportJobs(shared).get(KEY, _never)).report
    assert got is not None and got.site_name == "A"
    for path in tmp_path.glob("*.pickle"):  # older than KEEP
        old = time.time() - report_jobs.KEEP - 1
        os.utime(path, (old, old))
    calls = []

    def again(_progress: Progress) -> MonthlyReport:
        calls.append(1)
        return report

    _finished(ReportJobs(shared).get(KEY, again))
    assert calls == [1]


def test_files_of_builds_long_past_are_removed(tmp_path: Path, report: MonthlyReport) -> None:
    shared = SharedBuilds(tmp_path)
    _finished(ReportJobs(shared).get(KEY, lambda _p: report))
    (old,) = tmp_path.glob("*.pickle")
    day_ago = time.time() - report_jobs.FORGET_AFTER - 1
    os.utime(old, (day_ago, day_ago))
    _finished(ReportJobs(shared).get((*KEY[:-1], "other site"), lambda _p: report))
    assert not old.exists()
    assert len(list(tmp_path.glob("*.pickle"))) == 1


def test_without_a_data_directory_each_registry_builds_its_own(report: MonthlyReport) -> None:
    calls = []

    def build(_progress: Progress) -> MonthlyReport:
        calls.append(1)
        return report

    _finished(ReportJobs().get(KEY, build))
    _finished(ReportJobs().get(KEY, build))
    assert calls == [1, 1]
