"""Sample data shared by the database tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)  # a Monday


@dataclass(frozen=True)
class Unit:
    """The fields of routing.config.UnitSpec that sync_units reads."""

    id: str
    name: str
    name_en: str = ""
    kind: str = "section"
    chat_id: int | None = None


UNITS = [
    Unit("assistance", "社会救助科", "Social Assistance"),
    Unit("legal", "政策法规科", "Legal Affairs"),
    Unit("xixiu", "西秀区民政局", "Xixiu District Bureau", kind="subdivision"),
]
