"""Naming the site's zone next to the times shown in it (CSV headers, report periods).

The zone itself comes from the site file (``SiteConfig.zone``); nothing here knows which
zone a site uses.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def zone_label(zone: ZoneInfo, year: int) -> str:
    """A short name for a column of times in ``zone`` during ``year``.

    The abbreviation ("JST", "IST") when the zone keeps one all year; otherwise the zone's
    name ("America/New_York"), because a column of times may cross a daylight-saving change
    and "EST" would then be wrong for half of it.
    """
    names = {datetime(year, month, 1, 12, tzinfo=zone).tzname() for month in (1, 4, 7, 10)}
    if len(names) == 1:
        (name,) = names
        if name:
            return name
    return zone.key
