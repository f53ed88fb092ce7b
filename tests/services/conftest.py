"""A migrated database with the Anshun organisation, a few people, and the service."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.migrate import upgrade_database
from bot.db.models import OutboxMessage
from bot.db.records import PersonRecord
from bot.services import CaseService, Intake
from bot.texts import Texts
from routing.calendar import WorkCalendar
from routing.classifier import Classifier
from routing.config import Config, load_config
from routing.deadlines import DeadlineRules

NOW = dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC)  # Monday 2 March 2026, 09:30 in Anshun

# Group chats of the units used in the tests (negative ids: Bot API groups).
CHATS = {"disclosure_office": -1001, "legal": -1002, "general_desk": -1003, "xixiu": -1004}


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config()


@pytest.fixture(scope="session")
def texts() -> Texts:
    return Texts.load()


@pytest.fixture(scope="session")
def service(config: Config, texts: Texts) -> CaseService:
    return CaseService(
        config=config,
        classifier=Classifier.from_config(config),
        rules=DeadlineRules.load(),
        calendar=WorkCalendar.load(),
        texts=texts,
    )


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_database(db_url)
    engine = make_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@dataclass
class People:
    citizen: PersonRecord
    other_citizen: PersonRecord
    disclosure_staff: PersonRecord
    legal_staff: PersonRecord
    desk_staff: PersonRecord
    xixiu_staff: PersonRecord
    supervisor: PersonRecord
    supervisor2: PersonRecord
    admin: PersonRecord


@pytest.fixture
async def people(sessionmaker: async_sessionmaker[AsyncSession], config: Config) -> People:
    async with sessionmaker() as session:
        await repo.sync_units(session, config.units.units)
        for unit_id, chat_id in CHATS.items():
            await repo.set_unit_chat(session, unit_id, chat_id, forum=unit_id != "xixiu")

        async def person(tg: int, name: str, role: str = "citizen", unit: str | None = None):
            record = await repo.get_or_create_person(session, tg, name)
            if role != "citizen":
                record = await repo.set_role(session, record.id, role, unit)
            return record

        result = People(
            citizen=await person(101, "张三"),
            other_citizen=await person(102, "李四"),
            disclosure_staff=await person(201, "王公开", "staff", "disclosure_office"),
            legal_staff=await person(202, "赵法制", "staff", "legal"),
            desk_staff=await person(203, "钱信访", "staff", "general_desk"),
            xixiu_staff=await person(204, "孙西秀", "staff", "xixiu"),
            supervisor=await person(301, "周督查", "supervisor"),
            supervisor2=await person(302, "吴督查", "supervisor"),
            admin=await person(401, "郑管理", "admin"),
        )
        await session.commit()
    return result


@pytest.fixture
async def session(
    sessionmaker: async_sessionmaker[AsyncSession], people: People
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


async def outbox(session: AsyncSession) -> list[OutboxMessage]:
    rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
    return list(rows)


async def sent_to(session: AsyncSession, chat_id: int) -> list[dict[str, Any]]:
    """Payloads queued for one chat, in order (with ``_key`` and ``_method`` added)."""
    return [
        {**row.payload, "_key": row.dedupe_key, "_method": row.method, "_thread": row.thread_id}
        for row in await outbox(session)
        if row.chat_id == chat_id
    ]


PETITION = Intake(
    path="petition",
    topic="social_assistance",
    district="西秀区",
    text="我家低保申请交上去三个月了一直没人处理，旧州镇",
    answers={"name": "张三", "contact": "13800138000", "request": "请尽快审核我的低保申请"},
)

DISCLOSURE = Intake(
    path="disclosure",
    topic="social_assistance",
    district=None,
    text="申请公开2025年本市城乡低保资金发放情况",
    answers={
        "requester_kind": "natural_person",
        "name": "张三",
        "id_number": "11010519491231002X",
        "contact": "13800138000",
        "information": "2025年安顺市城乡低保资金发放汇总表",
        "form": "electronic",
        "delivery": "email",
        "email": "zhang@example.com",
    },
)

RECONSIDERATION = Intake(
    path="reconsideration",
    topic="social_assistance",
    district=None,
    text="我家低保被取消了，要求恢复",
    answers={
        "name": "张三",
        "contact": "13800138000",
        "act": "取消最低生活保障的通知",
        "body": "西秀区民政局",
        "date_learned": "2026-02-20",
    },
)
