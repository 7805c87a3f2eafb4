"""The deletion certificate (削除証明書), a PDF naming what was purged, by whose approval."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from db.models import DeletionRecord
from db.reports.pdf import ReportPDF

LOG_NAMES = {"events": "入退室記録 / entry and exit events", "audit": "操作記録 / audit log"}


def _local(dt: datetime | None, zone: ZoneInfo) -> str:
    # each time names its own zone abbreviation (JST; EST or EDT): a certificate is read alone
    return dt.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z") if dt else "-"


def write_certificate(
    path: Path,
    rec: DeletionRecord,
    *,
    site_name: str,
    zone: ZoneInfo,
    requested_by: str,
    approved_by: str,
) -> None:
    pdf = ReportPDF("削除証明書 / Certificate of deletion", f"nyutai deletion record {rec.id}")
    pdf.heading("削除証明書 / Certificate of deletion", size=16)
    pdf.para(
        "下記の記録は、保存期間（契約終了後の保存期間）の満了後、責任者の承認を得て削除しました。"
        "削除した範囲の最初と最後のハッシュ値を記録し、残る記録の連鎖は検証可能です。\n"
        "The records below were deleted after their retention period, with a manager's "
        "approval. The first and last hashes of the range are kept, so the remaining chain "
        "stays verifiable."
    )
    pdf.pairs(
        [
            ("事業所 / Site", site_name),
            ("削除記録番号 / Record", str(rec.id)),
            ("対象 / Log", LOG_NAMES.get(rec.log, rec.log)),
            ("連番 / Sequence", f"{rec.from_seq} – {rec.to_seq}"),
            ("期間 / Period", f"{_local(rec.from_time, zone)} – {_local(rec.to_time, zone)}"),
            ("件数 / Rows", str(rec.row_count)),
            ("最初のハッシュ / First hash", rec.first_hash),
            ("最後のハッシュ / Last hash", rec.last_hash),
            ("申請者 / Requested by", requested_by),
            ("承認者 / Approved by", approved_by),
            ("承認・削除日時 / Approved at", _local(rec.approved_at, zone)),
            ("署名鍵 / Signing key (Ed25519)", rec.public_key or "-"),
            ("署名 / Signature", (rec.signature or b"").hex()),
        ]
    )
    pdf.para("検証 / Verify: nyutai verify --config SITE.toml")
    pdf.save(path)
