"""Visitors' photos beside their names on the dashboard and in event rows.

One query per rendered list (visit ids -> photo ids), never one per row; operators who may
not open the visitor pages get no photos (the image URLs would answer 403 anyway).
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask
from flask_login import current_user
from sqlalchemy import select

from db.models import Visit
from web.db import get_session


def visit_photos(visit_ids: Iterable[int | None]) -> dict[int, int]:
    """{visit id: photo (snapshot) id} for the given visits that have a photo."""
    ids = {v for v in visit_ids if v is not None}
    if not ids or not current_user.is_authenticated or not current_user.can("visitors.view"):
        return {}
    rows = get_session().execute(
        select(Visit.id, Visit.photo_id).where(Visit.id.in_(ids), Visit.photo_id.is_not(None))
    )
    return {vid: pid for vid, pid in rows if pid is not None}


def init_app(app: Flask) -> None:
    app.jinja_env.globals["visit_photos"] = visit_photos
