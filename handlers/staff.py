"""Staff, in their unit's group: the buttons on the case card, messages in a case's topic
(relayed to the citizen), ``/note …`` (internal, audited).

A button that needs words (补正, 延期, 转办, 退回, 办结) arms a prompt; the next message
by that person in that topic is taken as the text. The prompt state is keyed by group,
topic and person, so it never leaks into another topic or to a colleague.
"""

from __future__ import annotations

import datetime as dt

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repo
from bot.db.records import PersonRecord
from bot.services import CaseService, ServiceError, refuse
from bot.services import buttons as b
from bot.services.reply_types import REPLY_GROUPS, REPLY_TYPES
from bot.texts import Texts
from handlers.callbacks import CaseAction, ReplyTypePick, TransferTo
from handlers.common import attachment_of, callback_in_group, command_args, lang_of, thread_of
from handlers.reply import say
from handlers.states import StaffInput
from routing.config import PathCode

router = Router(name=__name__)


async def in_unit_group(event: Message | CallbackQuery, session: AsyncSession) -> bool:
    """A group bound to a unit (/bind): any other group is not served (handlers/errors.py
    refuses what comes from one). The admin's /bind and /join come before this router."""
    chat = (
        event.chat if isinstance(event, Message) else event.message.chat if event.message else None
    )
    if chat is None or chat.type not in ("group", "supergroup"):
        return False
    return await repo.get_unit_by_chat(session, chat.id) is not None


router.message.filter(in_unit_group)
router.callback_query.filter(callback_in_group, in_unit_group)

# Buttons that need a text next: the prompt to show and the state that waits for it.
PROMPTS = {
    b.SUPPLEMENT: (StaffInput.supplement, "staff.prompt.supplement"),
    b.EXTEND: (StaffInput.extend_reason, "staff.prompt.extend_reason"),
    b.HAND_BACK: (StaffInput.hand_back_reason, "staff.prompt.hand_back"),
    b.ANSWER: (StaffInput.answer, "staff.prompt.answer"),
}


def prompt_state(
    fsm_storage: BaseStorage, bot: Bot, chat_id: int, thread_id: int | None, user_id: int
) -> FSMContext:
    """The prompt state of one person in one topic of one group."""
    key = StorageKey(bot_id=bot.id, chat_id=chat_id, user_id=user_id, thread_id=thread_id)
    return FSMContext(storage=fsm_storage, key=key)


def _markup(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=text, callback_data=data) for text, data in row]
            for row in rows
        ]
    )


async def _refuse(callback: CallbackQuery, texts: Texts, lang: str, error: ServiceError) -> None:
    # A short alert to whoever pressed; the service has logged and audited the refusal.
    await callback.answer(texts.get(error.key, lang, **error.fmt), show_alert=True)


@router.callback_query(CaseAction.filter())
async def on_card_button(
    callback: CallbackQuery,
    callback_data: CaseAction,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    bot: Bot,
    fsm_storage: BaseStorage,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    message = callback.message
    assert message is not None  # callback_in_group
    chat_id, thread_id = message.chat.id, thread_of(message)
    action, case_id = callback_data.action, callback_data.case_id
    try:
        if action == b.ACCEPT:
            await services.accept(session, actor, case_id, now)
            await callback.answer(texts.get("staff.done.accept", lang))
            return
        if action == b.START:
            await services.start(session, actor, case_id, now)
            await callback.answer(texts.get("staff.done.start", lang))
            return
        case = await services.staff_case(session, actor, case_id, action, now)
    except ServiceError as error:
        refuse(error.key)
        await _refuse(callback, texts, lang, error)
        return
    if action == b.TRANSFER:
        units = [u for u in services.config.units.units if u.id != case.unit_id]
        rows = [
            [(u.name, TransferTo(case_id=case.id, unit=u.id).pack()) for u in units[i : i + 2]]
            for i in range(0, len(units), 2)
        ]
        await say(
            session,
            chat_id,
            texts.get("staff.prompt.transfer_unit", lang, number=case.number),
            update_id=update_id,
            keyboard=_markup(rows),
            thread_id=thread_id,
        )
    elif action == b.ANSWER and case.path == PathCode.DISCLOSURE:
        rows = [
            [
                (
                    texts.get(f"reply_type.{group}", lang),
                    ReplyTypePick(case_id=case.id, code=group).pack(),
                )
            ]
            for group in REPLY_GROUPS
        ]
        await say(
            session,
            chat_id,
            texts.get("staff.prompt.reply_type", lang, number=case.number),
            update_id=update_id,
            keyboard=_markup(rows),
            thread_id=thread_id,
        )
    elif action in PROMPTS:
        target, prompt = PROMPTS[action]
        state = prompt_state(fsm_storage, bot, chat_id, thread_id, callback.from_user.id)
        await state.set_state(target)
        await state.set_data({"case_id": case.id})
        await say(
            session,
            chat_id,
            texts.get(prompt, lang, number=case.number, who=actor.display_name),
            update_id=update_id,
            thread_id=thread_id,
        )
    await callback.answer()


@router.callback_query(TransferTo.filter())
async def on_transfer_unit(
    callback: CallbackQuery,
    callback_data: TransferTo,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    bot: Bot,
    fsm_storage: BaseStorage,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    message = callback.message
    assert message is not None
    chat_id, thread_id = message.chat.id, thread_of(message)
    try:
        case = await services.staff_case(session, actor, callback_data.case_id, "transfer", now)
    except ServiceError as error:
        refuse(error.key)
        await _refuse(callback, texts, lang, error)
        return
    state = prompt_state(fsm_storage, bot, chat_id, thread_id, callback.from_user.id)
    await state.set_state(StaffInput.transfer_reason)
    await state.set_data({"case_id": case.id, "unit": callback_data.unit})
    await say(
        session,
        chat_id,
        texts.get(
            "staff.prompt.transfer_reason",
            lang,
            unit=services.unit_name(callback_data.unit, lang),
            who=actor.display_name,
        ),
        update_id=update_id,
        thread_id=thread_id,
    )
    await callback.answer()


@router.callback_query(ReplyTypePick.filter())
async def on_reply_type(
    callback: CallbackQuery,
    callback_data: ReplyTypePick,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    bot: Bot,
    fsm_storage: BaseStorage,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    message = callback.message
    assert message is not None
    chat_id, thread_id = message.chat.id, thread_of(message)
    code = callback_data.code
    try:
        case = await services.staff_case(session, actor, callback_data.case_id, "answer", now)
    except ServiceError as error:
        refuse(error.key)
        await _refuse(callback, texts, lang, error)
        return
    subtypes = REPLY_GROUPS.get(code)
    if subtypes is not None and len(subtypes) > 1:
        rows = [
            [
                (
                    texts.get(f"reply_type.{sub}", lang),
                    ReplyTypePick(case_id=case.id, code=sub).pack(),
                )
            ]
            for sub in subtypes
        ]
        await say(
            session,
            chat_id,
            texts.get(
                "staff.prompt.reply_subtype", lang, kind=texts.get(f"reply_type.{code}", lang)
            ),
            update_id=update_id,
            keyboard=_markup(rows),
            thread_id=thread_id,
        )
        await callback.answer()
        return
    leaf = subtypes[0] if subtypes else code
    if leaf not in REPLY_TYPES:
        refuse("error.bad_button", f"reply type {code!r} is not one of Art 36's")
        await callback.answer(texts.get("error.bad_button", lang), show_alert=True)
        return
    state = prompt_state(fsm_storage, bot, chat_id, thread_id, callback.from_user.id)
    await state.set_state(StaffInput.answer)
    await state.set_data({"case_id": case.id, "reply_type": leaf})
    await say(
        session,
        chat_id,
        texts.get("staff.prompt.answer", lang, number=case.number, who=actor.display_name),
        update_id=update_id,
        thread_id=thread_id,
    )
    await callback.answer()


@router.callback_query()
async def on_unknown_button(callback: CallbackQuery, actor: PersonRecord, texts: Texts) -> None:
    """Data no factory parses: an old client, or forged. Say so briefly; log who."""
    refuse("error.bad_button", f"unparsable data {callback.data!r}")
    await callback.answer(texts.get("error.bad_button", lang_of(actor)), show_alert=True)


@router.message(Command("note"))
async def on_note(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    thread_id = thread_of(message)
    reply_to = message.reply_to_message.message_id if message.reply_to_message else None
    case = await services.case_in_topic(session, message.chat.id, thread_id, reply_to)
    if case is None:
        refuse("staff.no_case_here")
        await say(
            session,
            message.chat.id,
            texts.get("staff.no_case_here", lang),
            update_id=update_id,
            thread_id=thread_id,
        )
        return
    try:
        await services.note(session, actor, case.id, command_args(message), now)
        reply = texts.get("staff.done.note", lang)
    except ServiceError as error:
        refuse(error.key)
        reply = texts.get(error.key, lang, **error.fmt)
    await say(session, message.chat.id, reply, update_id=update_id, thread_id=thread_id)


@router.message(F.photo | F.document)
async def on_topic_file(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    now: dt.datetime,
    update_id: int,
) -> None:
    """A photo or document in a case topic goes to the citizen, like a text would."""
    thread_id = thread_of(message)
    reply_to = message.reply_to_message.message_id if message.reply_to_message else None
    case = await services.case_in_topic(session, message.chat.id, thread_id, reply_to)
    attachment = attachment_of(message)
    if case is None or attachment is None:
        return
    try:
        await services.relay_file_to_citizen(session, actor, case.id, attachment, now)
    except ServiceError as error:
        refuse(error.key)
        await say(
            session,
            message.chat.id,
            texts.get(error.key, lang_of(actor), **error.fmt),
            update_id=update_id,
            thread_id=thread_id,
        )


@router.message(F.text & ~F.text.startswith("/"))
async def on_topic_message(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    bot: Bot,
    fsm_storage: BaseStorage,
    now: dt.datetime,
    update_id: int,
) -> None:
    """A staff member's text in a case topic: the answer to an armed prompt, or else a
    message for the citizen. The group's general chat is for the staff themselves."""
    lang = lang_of(actor)
    thread_id = thread_of(message)
    assert message.from_user is not None
    state = prompt_state(fsm_storage, bot, message.chat.id, thread_id, message.from_user.id)
    pending = await state.get_state()
    text = message.text or ""
    if pending is None:
        reply_to = message.reply_to_message.message_id if message.reply_to_message else None
        case = await services.case_in_topic(session, message.chat.id, thread_id, reply_to)
        if case is None:
            return
        try:
            await services.relay_to_citizen(session, actor, case.id, text, now)
        except ServiceError as error:
            refuse(error.key)
            await say(
                session,
                message.chat.id,
                texts.get(error.key, lang, **error.fmt),
                update_id=update_id,
                thread_id=thread_id,
            )
        return
    data = await state.get_data()
    case_id = int(data["case_id"])
    try:
        if pending == StaffInput.supplement.state:
            await services.request_supplement(session, actor, case_id, text, now)
        elif pending == StaffInput.extend_reason.state:
            await state.set_state(StaffInput.extend_approver)
            await state.update_data(reason=text)
            await say(
                session,
                message.chat.id,
                texts.get("staff.prompt.extend_approver", lang),
                update_id=update_id,
                thread_id=thread_id,
            )
            return
        elif pending == StaffInput.extend_approver.state:
            await services.extend(session, actor, case_id, str(data.get("reason", "")), text, now)
        elif pending == StaffInput.transfer_reason.state:
            await services.transfer(session, actor, case_id, str(data["unit"]), text, now)
        elif pending == StaffInput.hand_back_reason.state:
            await services.hand_back(session, actor, case_id, text, now)
        elif pending == StaffInput.answer.state:
            await services.answer(session, actor, case_id, text, now, data.get("reply_type"))
    except ServiceError as error:
        refuse(error.key)
        await say(
            session,
            message.chat.id,
            texts.get(error.key, lang, **error.fmt),
            update_id=update_id,
            thread_id=thread_id,
        )
        if error.key.startswith("invalid."):
            return  # the prompt stays armed: type it again
    await state.clear()
