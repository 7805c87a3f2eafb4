"""Staff CSV import/export (preview, per-row problems, idempotent on the employee number),
the CLI on the same code path, and person search by normalised name and kana."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select

from db.models import AuditLog, Credential, Event, Person, Training
from db.types import utcnow
from domain.people_csv import CsvFileError, decode
from domain.search import normalise
from tests.web.conftest import Auth, Site
from web.people_import import export_people, import_people

TODAY = date(2026, 4, 10)
HEADER = "社員番号,氏名,フリガナ,所属,取扱者指定,研修受講日,カードID"


def excel_cp932(lines: list[str]) -> bytes:
    """What Excel on Japanese Windows writes for "CSV (comma separated)": cp932 and CRLF."""
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


GOOD = [
    HEADER,
    "E100,伊藤　誠,イトウ マコト,情報システム課,1,2026/3/1,0102030405060A0B",
    "E101,渡辺 恵子,ワタナベ ケイコ,業務課,0,,iso14443a:04A1B2C3D4E5F6",
]


def test_decode_reads_the_encodings_excel_writes() -> None:
    text = "社員番号,氏名\r\nE1,髙橋 﨑\r\n"  # cp932-only (NEC/IBM extension) characters
    assert decode(text.encode("cp932")) == text
    assert decode(b"\xef\xbb\xbf" + text.encode("utf-8")) == text
    assert decode(text.encode("utf-8")) == text
    with pytest.raises(CsvFileError):
        decode(b"\xff\xfe\x00\x00\x81")


def test_cp932_file_is_previewed_then_imported_and_is_idempotent(session_factory: Any) -> None:
    data = excel_cp932(GOOD)
    with session_factory() as s:
        preview = import_people(s, data, TODAY, apply=False)
    assert preview.ok and (preview.rows, preview.created) == (2, 2)
    with session_factory() as s:  # the preview saved nothing
        assert s.scalar(select(func.count()).select_from(Person)) == 0
    with session_factory() as s:
        done = import_people(s, data, TODAY, apply=True, username="cli:test", filename="x.csv")
    assert done.applied
    with session_factory() as s:
        ito = s.scalars(select(Person).where(Person.employee_no == "E100")).one()
        assert (ito.name, ito.name_kana, ito.designated) == ("伊藤 誠", "イトウ マコト", True)
        assert [t.completed_on for t in s.scalars(select(Training))] == [date(2026, 3, 1)]
        cards = {(c.technology, c.card_id) for c in s.scalars(select(Credential))}
        assert cards == {("felica", "0102030405060A0B"), ("iso14443a", "04A1B2C3D4E5F6")}
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "people.import")).one()
        assert audit.after["created"] == 2 and audit.after["sha256"] == done.sha256
    with session_factory() as s:  # the same file again changes nothing
        again = import_people(s, data, TODAY, apply=True)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Person)) == 2
        assert s.scalar(select(func.count()).select_from(Credential)) == 2
        assert s.scalar(select(func.count()).select_from(Training)) == 1
    changed = excel_cp932([HEADER, GOOD[1].replace("情報システム課", "総務課")])
    with session_factory() as s:
        upd = import_people(s, changed, TODAY, apply=True)
    assert (upd.created, upd.updated) == (0, 1)
    with session_factory() as s:
        assert (
            s.scalars(select(Person.organization).where(Person.employee_no == "E100")).one()
            == "総務課"
        )


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (",名無し,,,1,,", "employee_no_missing"),
        ("E200,,,,1,,", "name_missing"),
        ("E200,佐々木,,,maybe,,", "designated_invalid"),
        ("E200,佐々木,,,1,2026-13-01,", "training_date_invalid"),
        ("E200,佐々木,,,1,2027-01-01,", "training_date_future"),
        ("E200,佐々木,,,1,,XYZ", "card_unknown_kind"),
        ("E200,佐々木,,,1,,felica:0102", "card_invalid"),
        ("E100,佐々木,,,1,,", "employee_no_repeated"),
        ("E200,佐々木,,,1,,0102030405060A0B", "card_repeated"),
    ],
)
def test_each_row_problem_is_named_and_nothing_is_saved(
    session_factory: Any, line: str, code: str
) -> None:
    data = excel_cp932([*GOOD, line])
    with session_factory() as s:
        out = import_people(s, data, TODAY, apply=True)
    assert not out.applied and out.problem_rows == 1
    bad = [row for row, _ in out.shown if row.problems]
    assert bad[0].line == 4 and bad[0].problems[0][0] == code
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Person)) == 0


def test_a_card_of_someone_else_is_refused(session_factory: Any, site: Site) -> None:
    data = excel_cp932([HEADER, "E300,新人,,,1,,felica:0102030405060708"])  # 田中's card
    with session_factory() as s:
        out = import_people(s, data, TODAY, apply=False)
    assert [p[0] for p in out.shown[0][0].problems] == ["card_taken"]


def test_missing_column_keeps_the_stored_value(session_factory: Any, site: Site) -> None:
    with session_factory() as s:
        out = import_people(s, "社員番号,氏名\nE001,田中 一郎\n".encode(), TODAY, apply=True)
    assert out.unchanged == 1
    with session_factory() as s:
        assert s.scalars(select(Person.designated).where(Person.employee_no == "E001")).one()


def test_export_reads_back_unchanged(session_factory: Any, site: Site) -> None:
    with session_factory() as s:
        import_people(s, excel_cp932(GOOD), TODAY, apply=True)
        exported = "".join(export_people(s, "ja")).encode("utf-8")
    assert exported.startswith(b"\xef\xbb\xbf")
    text = exported.decode("utf-8-sig")
    assert text.splitlines()[0] == HEADER
    assert "E100,伊藤 誠,イトウ マコト,情報システム課,1,2026-03-01,felica:0102030405060A0B" in text
    with session_factory() as s:
        back = import_people(s, exported, utcnow().date(), apply=False)  # seeded: real dates
    assert back.ok and back.created == 0 and back.updated == 0 and back.unchanged == back.rows


def test_import_reads_people_in_batches_not_the_whole_table(
    session_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lookups are per batch: no query may ask for people without an employee-number list."""
    import web.people_import as mod

    monkeypatch.setattr(mod, "BATCH", 3)
    lines = [HEADER] + [f"E{i:04d},社員 {i},,,1,," for i in range(10)]
    statements: list[str] = []
    from sqlalchemy import event

    with session_factory() as s:
        engine = s.get_bind()

        def seen(_c: Any, _cur: Any, stmt: str, params: Any, *_: Any) -> None:
            if "FROM people" in stmt and stmt.lstrip().upper().startswith("SELECT"):
                statements.append(stmt)

        event.listen(engine, "before_cursor_execute", seen)
        try:
            out = import_people(s, "\n".join(lines).encode(), TODAY, apply=True)
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    assert out.created == 10
    assert statements and all("IN" in st.upper() for st in statements)


def test_console_preview_then_confirm(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    auth.login("manager")
    form = auth.client.get("/people/csv/import").text
    assert "社員番号" in form
    token = auth.token("/people/csv/import")
    resp = auth.client.post(
        "/people/csv/import",
        data={"csrf_token": token, "file": (io.BytesIO(excel_cp932(GOOD)), "staff.csv")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200 and 'id="import-confirm"' in resp.text
    with session_factory() as s:
        assert (
            s.scalar(select(func.count()).select_from(Person).where(Person.employee_no == "E100"))
            == 0
        )
    sha = resp.text.split('name="sha256" value="')[1].split('"')[0]
    done = auth.post("/people/csv/import/confirm", {"sha256": sha}, page="/people/csv/import")
    assert done.status_code == 302
    with session_factory() as s:
        assert s.scalars(select(Person.name).where(Person.employee_no == "E100")).one() == "伊藤 誠"
    # a file with a problem shows the row and no confirm button
    token = auth.token("/people/csv/import")
    bad = auth.client.post(
        "/people/csv/import",
        data={
            "csrf_token": token,
            "file": (io.BytesIO(excel_cp932([HEADER, "E9,,,,1,,"])), "b.csv"),
        },
        content_type="multipart/form-data",
    )
    assert bad.status_code == 400 and "import-confirm" not in bad.text
    assert "氏名がありません" in bad.text


def test_guard_cannot_import(app: Flask, site: Site, auth: Auth) -> None:
    auth.login("guard")
    assert auth.client.get("/people/csv/import").status_code == 403


def test_cli_import_and_export_share_the_code_path(
    tmp_path: Path, db_url: str, session_factory: Any
) -> None:
    from nyutai.cli import main

    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nname = "t"\n[database]\nurl = "{db_url}"\n', encoding="utf-8")
    staff = tmp_path / "staff.csv"
    staff.write_bytes(excel_cp932(GOOD))
    runner = CliRunner()
    dry = runner.invoke(main, ["people", "import", "--config", str(site), "--dry-run", str(staff)])
    assert dry.exit_code == 0, dry.output
    assert "2 new" in dry.output and "nothing saved" in dry.output
    done = runner.invoke(main, ["people", "import", "--config", str(site), str(staff)])
    assert done.exit_code == 0 and "saved" in done.output
    bad = tmp_path / "bad.csv"
    bad.write_bytes(excel_cp932([HEADER, "E5,,,,1,,"]))
    res = runner.invoke(main, ["people", "import", "--config", str(site), str(bad)])
    assert res.exit_code == 1 and "line 2" in res.output
    out = tmp_path / "out.csv"
    exp = runner.invoke(main, ["people", "export", "--config", str(site), "-o", str(out)])
    assert exp.exit_code == 0
    assert "E101,渡辺 恵子" in out.read_text(encoding="utf-8-sig")


# --- person search ---------------------------------------------------------------------


def test_normalise_ignores_spaces_widths_and_kana_kind() -> None:
    assert normalise("伊藤誠") == normalise("伊藤 誠") == normalise("伊藤　誠")
    assert normalise("ｲﾄｳ ﾏｺﾄ") == normalise("イトウ　マコト") == normalise("いとうまこと")


def test_people_search_finds_by_name_without_space_and_by_kana(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    with session_factory() as s:
        s.add(Person(name="伊藤 誠", name_kana="イトウ マコト", employee_no="E777"))
        s.commit()
    auth.login("manager")
    for q in ("伊藤誠", "いとう", "ｲﾄｳﾏｺﾄ", "マコト"):
        assert "伊藤 誠" in auth.client.get("/people/", query_string={"q": q}).text, q
    assert "伊藤 誠" not in auth.client.get("/people/", query_string={"q": "田中"}).text


def test_search_key_follows_edits(session_factory: Any) -> None:
    with session_factory() as s:
        p = Person(name="伊藤 誠")
        s.add(p)
        s.commit()
        p.name_kana = "イトウ"
        s.commit()
        assert s.scalars(select(Person.search_key)).one() == "伊藤誠\x1fいとう"


def test_event_log_person_filter_uses_the_same_search(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    from db.eventlog import append_event

    with session_factory() as s:
        append_event(
            s,
            Event(
                occurred_at=utcnow() - timedelta(minutes=1),
                kind="presentation",
                direction="in",
                door_id=site.sr_door,
                area_id=site.server_room,
                person_id=site.tanaka,
                decision="granted",
                reason="granted",
            ),
        )
        s.commit()
    auth.login("manager")
    page = auth.client.get("/events/", query_string={"person": "田中一郎"}).text
    assert "data-event-id" in page or "田中 一郎" in page.split("event-table")[1]
