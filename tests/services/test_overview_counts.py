"""The dashboard overview's figures are counted in SQL: here they are checked against the cases as
the services leave them (answered within the period or late, transferred, still open)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import CaseService
from bot.web.views import _overview_groups
from tests.services.conftest import NOW, PETITION, People


async def test_overview_groups_count_open_answered_on_time_and_hops(
    service: CaseService, session: AsyncSession, people: People
) -> None:
    cases = [await service.file_case(session, people.citizen, PETITION, NOW) for _ in range(3)]
    on_time, late, still_open = cases
    for case in (on_time, late):
        await service.accept(session, people.xixiu_staff, case.id, NOW)
    await service.answer(session, people.xixiu_staff, on_time.id, "已办理。", NOW)
    # 办结答复 is due 60 days after acceptance (Art 34): answered a year later, it is late.
    await service.answer(
        session, people.xixiu_staff, late.id, "已办理。", NOW + dt.timedelta(days=365)
    )
    await session.commit()

    rows = (await session.execute(_overview_groups(None))).all()
    (row,) = rows
    assert (row.unit_id, row.path) == ("xixiu", "petition")
    assert (row.cases, row.open, row.answered, row.on_time, row.hops) == (3, 1, 2, 1, 0)
    assert still_open.state == "routed"
    assert (await session.execute(_overview_groups("legal"))).all() == []
