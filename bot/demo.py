"""The demo organisation on the sandbox: every unit of the config gets a forum group with one
staff member; a citizen, a supervisor and an admin are created; the database is told who is
who. Used by ``huiyin run`` without a token, and by the end-to-end tests.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repo
from bot.db.records import Role
from bot.sandbox import SandboxState, seed_demo
from routing.config import Config


async def seed_organisation(
    state: SandboxState, config: Config, sessionmaker: async_sessionmaker[AsyncSession]
) -> dict[str, Any]:
    """Seed the sandbox and bind the groups and people in the database; the demo's ids."""
    demo = seed_demo(state, [(unit.id, unit.name) for unit in config.units.units])
    async with sessionmaker() as session, session.begin():
        await repo.sync_units(session, config.units.units)
        # A fresh sandbox has new chat ids: unbind every unit first so none collides.
        for unit in await repo.list_units(session, active_only=False):
            await repo.set_unit_chat(session, unit.id, None, forum=True)
        for unit in demo["units"]:
            await repo.set_unit_chat(session, unit["id"], unit["chat_id"], forum=True)
            staff = await repo.get_or_create_person(session, unit["staff_user_id"])
            await repo.set_role(session, staff.id, Role.STAFF, unit["id"])
        supervisor = await repo.get_or_create_person(session, demo["supervisor_id"])
        await repo.set_role(session, supervisor.id, Role.SUPERVISOR, None)
        admin = await repo.get_or_create_person(session, demo["admin_id"])
        await repo.set_role(session, admin.id, Role.ADMIN, None)
    return demo
