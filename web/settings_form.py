"""The site settings form: one typed field per setting of db.settings, with its words (Japanese
first, English too) and a help sentence. The rules stay in db.settings.normalise_setting, the
one validation path; the input types and limits here only help the browser (a value typed
around them is still checked there)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

from db.settings import (
    CONTRACT_END,
    CONTRACT_YEARS,
    DEFAULTS,
    END_OF_DAY,
    MAX_RETENTION_YEARS,
    MIN_RETENTION_YEARS,
    RETENTION_YEARS,
)
from domain.reasons import Sentence


@dataclass(frozen=True)
class SettingField:
    key: str
    words: Sentence  # the label, Japanese first, English too
    help: Any  # a lazy gettext string in the operator's language
    input: str  # the HTML input type: date, number, time
    attrs: dict[str, str]  # min, max, step
    four_eyes: bool = False  # a change becomes an approval request (web.approvals)
    may_be_unknown: bool = False  # "not known yet" (stored as null)


FIELDS: tuple[SettingField, ...] = (
    SettingField(
        CONTRACT_END,
        Sentence("契約終了日", "Contract end"),
        _l(
            "The last day of the contract, in the site's time zone. Records are kept for the "
            "retention period after it and may be purged only then; while it is not known, "
            "nothing may be purged. A change needs a second person's approval."
        ),
        "date",
        {"min": f"{CONTRACT_YEARS[0]}-01-01", "max": f"{CONTRACT_YEARS[1]}-12-31"},
        four_eyes=True,
        may_be_unknown=True,
    ),
    SettingField(
        RETENTION_YEARS,
        Sentence("保存期間（年）", "Retention (years)"),
        _l(
            "How many years the records are kept after the contract end (at least "
            "%(low)s, at most %(high)s). A change needs a second person's approval.",
            low=MIN_RETENTION_YEARS,
            high=MAX_RETENTION_YEARS,
        ),
        "number",
        {"min": str(MIN_RETENTION_YEARS), "max": str(MAX_RETENTION_YEARS), "step": "1"},
        four_eyes=True,
    ),
    SettingField(
        END_OF_DAY,
        Sentence("終業時刻", "End of day"),
        _l(
            "People still inside at this time (the site's wall time) raise an alarm and are "
            "listed in the monthly report's still-inside table."
        ),
        "time",
        {"step": "60"},
    ),
)
assert {f.key for f in FIELDS} == set(DEFAULTS), "every setting has a field"
