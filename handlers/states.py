"""FSM states. Citizens' live in their private chat; staff's are keyed by group, topic and
person (see handlers/staff.py), so two colleagues in two topics never mix up their input."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class IntakeForm(StatesGroup):
    description = State()  # waiting for the citizen to describe the matter (photos welcome)
    confirm = State()  # "what I understood": 确认 / 换一个类别
    field = State()  # one question of the path's application (data["field"] names it)


class CitizenInput(StatesGroup):
    lookup = State()  # a tracking number for 查询进度
    supplement = State()  # the 补正 for data["case_id"] (text, photos, documents)
    message = State()  # a message to the unit about data["case_id"]
    review = State()  # the reason for a 复查 request on data["case_id"]
    rating_comment = State()  # an optional sentence after rating data["case_id"]


class StaffInput(StatesGroup):
    supplement = State()  # what the citizen must add
    extend_reason = State()
    extend_approver = State()
    transfer_reason = State()  # data["unit"] chosen by button
    hand_back_reason = State()
    answer = State()  # data["reply_type"] chosen by button (disclosure)
