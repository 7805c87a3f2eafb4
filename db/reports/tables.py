"""The monthly report as titled tables of text cells, shared by the CSV and PDF renderings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from db.reports.monthly import AlarmLine, IncidentLine, MonthlyReport

KIND_JA = {"staff": "従業者", "visitor": "部外者"}
STATE_JA = {
    "raised": "発報中",
    "acknowledged": "確認済",
    "cleared": "解除済",
    "open": "対応中",
    "closed": "完了",
}


@dataclass(frozen=True)
class Table:
    key: str  # machine name of the section (first CSV column)
    title: str
    area: str  # area code, "" for site-wide tables
    header: list[str]
    rows: list[list[str]]
    widths: tuple[float, ...] | None = None  # PDF column widths (mm), summing to 190


def local(dt: datetime | None, zone: ZoneInfo) -> str:
    """An instant in the site's wall time (the report names the zone once, in its header)."""
    return dt.astimezone(zone).strftime("%Y-%m-%d %H:%M") if dt else ""


def span(begin: datetime | None, end: datetime | None, zone: ZoneInfo, open_end: str = "") -> str:
    """A window with its end always shown: the end's time alone on the same local day, its
    full date and time on another day, ``open_end`` when it has not ended."""
    if begin is None:
        return ""
    first = local(begin, zone)
    if end is None:
        return f"{first} – {open_end}".rstrip(" –")
    last = local(end, zone)
    return f"{first} – {last[11:] if last[:10] == first[:10] else last}"


NOT_SIGNED_OUT = "未退出 / not signed out"


def report_tables(r: MonthlyReport) -> list[Table]:
    t: list[Table] = []
    z = r.zone
    for a in r.areas:
        label = f"{a.name} ({a.code})"
        t.append(
            Table(
                "entries_exits",
                f"{label} 入退室回数（個人別） / Entries and exits per person",
                a.code,
                ["氏名 / Name", "区分 / Kind", "所属 / Organization", "入室 / In", "退室 / Out"],
                [
                    [
                        p.name,
                        KIND_JA.get(p.kind, p.kind),
                        p.organization,
                        str(p.entries),
                        str(p.exits),
                    ]
                    for p in a.people
                ],
                (55, 25, 60, 25, 25),
            )
        )
        t.append(
            Table(
                "people_totals",
                f"{label} 入退室者の合計 / Totals over everyone who crossed",
                a.code,
                [
                    "従業者 / Staff",
                    "部外者 / Visitors",
                    "入室 / In",
                    "退室 / Out",
                    "個別表示 / Listed",
                    "表示省略 / Not listed",
                ],
                [
                    [
                        str(a.staff_count),
                        str(a.visitor_count),
                        str(a.entries),
                        str(a.exits),
                        str(len(a.people)),
                        str(a.people_omitted),
                    ]
                ],
                (32, 32, 30, 30, 33, 33),
            )
        )
        t.append(
            Table(
                "visitors",
                f"{label} 部外者の入室 / Visitors",
                a.code,
                [
                    "来訪者 / Visitor",
                    "所属 / Org.",
                    "用件 / Purpose",
                    "受入担当 / Host",
                    "立会者 / Escort",
                    "持込機器 / Devices",
                    "予定 / Planned",
                    "受付・退出 / In-out",
                    "入室 / In",
                ],
                [
                    [
                        v.visitor,
                        v.organization,
                        v.purpose,
                        v.host,
                        v.escort,
                        v.devices,
                        span(v.expected_from, v.expected_until, z),
                        span(v.signed_in_at, v.signed_out_at, z, NOT_SIGNED_OUT),
                        str(v.entries),
                    ]
                    for v in a.visits
                ],
                (20, 18, 26, 18, 18, 24, 28, 28, 10),
            )
        )
        t.append(
            Table(
                "denials",
                f"{label} 入室拒否（理由別） / Denials by reason",
                a.code,
                ["理由 / Reason", "説明", "Description", "件数 / Count"],
                [[d.reason, d.text_ja, d.text_en, str(d.count)] for d in a.denials],
                (40, 60, 70, 20),
            )
        )
        t.append(_alarm_table(f"{label} 警報 / Alarms", a.code, a.alarms, z))
        t.append(_incident_table(f"{label} 事故・インシデント / Incidents", a.code, a.incidents, z))
        t.append(
            Table(
                "still_inside",
                f"{label} 終業時刻（{r.end_of_day:%H:%M}）の在室者 / Still inside at day end"
                + (
                    f"（先頭 {len(a.still_inside)} 件。ほか {a.inside_omitted} 件は日別人数に含む"
                    f" / first {len(a.still_inside)}; {a.inside_omitted} more in the daily"
                    " counts）"
                    if a.inside_omitted
                    else ""
                ),
                a.code,
                ["日付 / Day", "氏名 / Name", "区分 / Kind", "入室時刻 / Since"],
                [
                    [str(s.day), s.name, KIND_JA.get(s.kind, s.kind), local(s.since, z)]
                    for s in a.still_inside
                ],
                (30, 70, 30, 60),
            )
        )
        t.append(
            Table(
                "inside_per_day",
                f"{label} 終業時刻の在室人数（日別） / Head count at day end",
                a.code,
                ["日付 / Day", "在室人数 / People inside"],
                [[str(day), str(n)] for day, n in a.inside_per_day if n],
                (60, 130),
            )
        )
    t.append(_alarm_table("区域外の警報 / Site-wide alarms", "", r.site_alarms, z))
    t.append(
        _incident_table("区域外のインシデント / Site-wide incidents", "", r.site_incidents, r.zone)
    )
    t.append(
        Table(
            "deletions",
            "記録の削除 / Deletions",
            "",
            [
                "番号",
                "記録 / Log",
                "連番 / Seq",
                "期間 / Period",
                "件数",
                "最後のハッシュ / Last hash",
                "承認者 / Approver",
                "承認日時",
            ],  # fmt: skip
            [
                [
                    str(d.record_id),
                    d.log,
                    f"{d.from_seq}–{d.to_seq}",
                    f"{local(d.from_time, z)}–{local(d.to_time, z)}",
                    str(d.row_count),
                    d.last_hash,
                    d.approved_by,
                    local(d.approved_at, z),
                ]
                for d in r.deletions
            ],
            (10, 14, 18, 34, 12, 50, 24, 28),
        )
    )
    t.append(
        Table(
            "checkpoints",
            "署名付きチェックポイント / Signed checkpoints",
            "",
            ["日時 / Time", "記録 / Log", "連番 / Seq", "ハッシュ / Hash (SHA-256)"],
            [[local(c.created_at, z), c.log, str(c.seq), c.hash] for c in r.checkpoints],
            (30, 18, 18, 124),
        )
    )
    t.append(
        Table(
            "public_keys",
            "署名検証用公開鍵 / Public keys (Ed25519)",
            "",
            ["公開鍵 / Public key (hex)"],
            [[k] for k in r.public_keys],
            (190,),
        )
    )
    return t


def _alarm_table(title: str, area: str, alarms: list[AlarmLine], zone: ZoneInfo) -> Table:
    return Table(
        "alarms",
        title,
        area,
        [
            "発生 / Raised",
            "種類 / Kind",
            "場所 / Place",
            "状態",
            "確認 / Ack",
            "確認者",
            "コメント / Comment",
            "解除 / Cleared",
        ],  # fmt: skip
        [
            [
                local(a.raised_at, zone),
                a.text_ja,
                a.place,
                STATE_JA.get(a.state, a.state),
                local(a.acknowledged_at, zone),
                a.acknowledged_by,
                a.comment,
                local(a.cleared_at, zone),
            ]
            for a in alarms
        ],
        (26, 28, 26, 14, 26, 18, 30, 22),
    )


def _incident_table(title: str, area: str, incidents: list[IncidentLine], zone: ZoneInfo) -> Table:
    return Table(
        "incidents",
        title,
        area,
        [
            "番号",
            "発生 / Opened",
            "概要 / Summary",
            "状態",
            "原因 / Cause",
            "再発防止 / Prevention",
            "完了 / Closed",
            "証拠 / Evidence",
        ],  # fmt: skip
        [
            [
                str(i.incident_id),
                local(i.opened_at, zone),
                i.summary,
                STATE_JA.get(i.state, i.state),
                i.cause,
                i.prevention,
                f"{local(i.closed_at, zone)} {i.closed_by}".strip(),
                f"events {i.evidence_events}, snapshots {i.evidence_snapshots}",
            ]
            for i in incidents
        ],
        (10, 24, 36, 12, 30, 30, 24, 24),
    )
