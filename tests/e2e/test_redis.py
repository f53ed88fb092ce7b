"""Several workers share conversation state through Redis (aiogram RedisStorage) and take
one update at a time per chat and user across processes (RedisEventIsolation). Here: the
bot on PostgreSQL with Redis at 127.0.0.1:6379, an intake that survives a restart, with its
state in Redis and not in the database's FSM table."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from sqlalchemy import func, select

from bot.db.models import FsmRecord
from tests.e2e.conftest import World, buttons, make_world
from tests.e2e.test_paths import answer, number_in, press, receipt_of

REDIS = os.environ.get("HUIYIN_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_url() -> str:
    client = redis.Redis.from_url(REDIS)
    try:
        await client.ping()
    except (OSError, redis.ConnectionError) as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis at {REDIS} unreachable: {exc!r}")
        pytest.skip(f"Redis at {REDIS} unreachable: {exc!r}")
    finally:
        await client.aclose()
    return REDIS


@pytest.fixture
async def redis_world(pg_database: str, redis_url: str) -> AsyncIterator[World]:
    async with make_world(pg_database, redis_url=redis_url) as world:
        yield world


async def test_an_intake_lives_in_redis_and_survives_a_restart(redis_world: World) -> None:
    world = redis_world
    dispatcher = world.huiyin.dispatcher
    assert isinstance(dispatcher.storage, RedisStorage)
    assert isinstance(dispatcher.fsm.events_isolation, RedisEventIsolation)
    # A fresh citizen each run: Redis outlives the test's database.
    citizen = await world.new_user(f"测试{secrets.token_hex(2)}")

    await world.send(citizen, "我家低保申请了三个月还没批下来，旧州镇")
    screen = await world.bot_says(citizen, lambda m: "✅ 确认" in buttons(m))
    await press(world, citizen, screen, "✅ 确认")
    await answer(world, citizen, "姓名", "张三")

    await world.restart()  # another process, as far as the conversation can tell
    assert isinstance(world.huiyin.dispatcher.storage, RedisStorage)
    await answer(world, citizen, "电话", "13800138000")
    await answer(world, citizen, "诉求", "请尽快处理")
    assert number_in(await receipt_of(world, citizen)).startswith("HY-")

    async with world.huiyin.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(FsmRecord)) == 0
