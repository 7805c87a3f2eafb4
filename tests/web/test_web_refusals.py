"""Refused input is logged (method, path, status, operator), never with the submitted values."""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from tests.web.conftest import Auth, Site
from tests.web.test_web_visitors import _form


def test_a_refused_form_is_logged_without_its_values(
    app: Flask, site: Site, auth: Auth, caplog: pytest.LogCaptureFixture
) -> None:
    auth.login("guard")
    caplog.set_level(logging.WARNING, logger="nyutai.web.refusals")
    secret_looking = "SECRET-TEXT-482913"
    response = auth.post(
        "/visitors/", _form(site, purpose="", name=secret_looking), page="/visitors/"
    )
    assert response.status_code == 400
    lines = [r.getMessage() for r in caplog.records if r.name == "nyutai.web.refusals"]
    assert any("POST /visitors/ -> 400 (operator guard)" in line for line in lines), lines
    assert secret_looking not in "\n".join(lines)


def test_a_forbidden_request_and_an_error_message_are_logged(
    app: Flask, site: Site, auth: Auth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="nyutai.web.refusals")
    auth.login("auditor")
    assert auth.client.get("/people/new").status_code == 403
    lines = [r.getMessage() for r in caplog.records if r.name == "nyutai.web.refusals"]
    assert any("GET /people/new -> 403 (operator auditor)" in line for line in lines), lines


def test_a_failed_login_never_logs_the_password(
    app: Flask, site: Site, auth: Auth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth.login("guard", password="not-the-password-9171")
    assert "not-the-password-9171" not in "\n".join(
        r.getMessage() + repr(r.args) for r in caplog.records
    )
