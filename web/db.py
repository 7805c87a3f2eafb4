"""One SQLAlchemy engine per app, one session per request (closed at teardown)."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory


def init_app(app: Flask, url: str) -> None:
    engine = make_engine(url)
    app.extensions["nyutai_engine"] = engine
    app.extensions["nyutai_sessions"] = make_session_factory(engine)
    app.teardown_appcontext(_close)


def session_factory() -> sessionmaker[Session]:
    factory: sessionmaker[Session] = current_app.extensions["nyutai_sessions"]
    return factory


def get_session() -> Session:
    """The request's session; the view commits, teardown closes (rolling back leftovers)."""
    if "db" not in g:
        g.db = session_factory()()
    session: Session = g.db
    return session


def _close(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
