"""A demo organisation for the sandbox: one forum group per unit, with people to play."""

from __future__ import annotations

from typing import Any

from bot.sandbox.state import SandboxState


def seed_demo(state: SandboxState, units: list[tuple[str, str]]) -> dict[str, Any]:
    """Create a citizen, a supervisor, an admin and, per (unit id, unit name), a forum group
    with one staff member. Supervisor and admin sit in every unit group.

    Returns (and remembers for GET /sandbox/api/state)::

        {"units": [{"id", "name", "chat_id", "staff_user_id"}], "citizen_id",
         "supervisor_id", "admin_id", "staff_ids": {unit id: user id}}
    """
    citizen = state.add_user("张", last_name="三", language_code="zh-hans", username="zhangsan")
    supervisor = state.add_user("李", last_name="督查", language_code="zh-hans")
    admin = state.add_user("赵", last_name="管理员", language_code="zh-hans")
    seeded_units = []
    for unit_id, unit_name in units:
        staff = state.add_user("王", last_name=f"科员（{unit_name}）", language_code="zh-hans")
        group = state.add_group(
            f"{unit_name} · 回音工单",
            forum=True,
            members=[staff.id, supervisor.id],
            admins=[admin.id],
        )
        seeded_units.append(
            {"id": unit_id, "name": unit_name, "chat_id": group.id, "staff_user_id": staff.id}
        )
    demo: dict[str, Any] = {
        "units": seeded_units,
        "citizen_id": citizen.id,
        "supervisor_id": supervisor.id,
        "admin_id": admin.id,
        "staff_ids": {unit["id"]: unit["staff_user_id"] for unit in seeded_units},
    }
    state.demo = demo
    return demo
