"""Method parameters, read the way Telegram reads them.

Telegram accepts the same parameters as a query string, an urlencoded or multipart form,
or a JSON body. In forms every value is a string and the structured ones (reply_markup,
entities, allowed_updates, …) are JSON-serialized; aiogram always sends multipart and puts
uploads in separate parts referenced as ``attach://<name>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.sandbox.errors import bad_request


@dataclass(frozen=True)
class Upload:
    """A file sent in a multipart request."""

    filename: str
    content_type: str
    content: bytes


class Params:
    """Typed access to one call's parameters; wrong types answer 400 like Telegram."""

    def __init__(self, values: dict[str, Any]):
        self._values = values

    @classmethod
    async def from_request(cls, request: web.Request) -> Params:
        values: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            values.update(await _read_body(request))
        return cls(values)

    def raw(self, name: str) -> Any:
        value = self._values.get(name)
        return None if value == "" else value

    def has(self, name: str) -> bool:
        return self.raw(name) is not None

    def str_(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise bad_request(f'field "{name}" must be of type String')

    def required_str(self, name: str) -> str:
        value = self.str_(name)
        if value is None:
            raise bad_request(f"{name} is empty")
        return value

    def int_(self, name: str, default: int | None = None) -> int | None:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            raise bad_request(f'field "{name}" must be of type Integer')
        if isinstance(value, int):
            return value
        try:
            return int(str(value))
        except ValueError:
            raise bad_request(f'field "{name}" must be of type Integer') from None

    def required_int(self, name: str) -> int:
        value = self.int_(name)
        if value is None:
            raise bad_request(f"{name} is empty")
        return value

    def float_(self, name: str, default: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f'field "{name}" must be of type Float') from None

    def bool_(self, name: str, default: bool = False) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in {"true", "1"}

    def json_(self, name: str) -> Any:
        """A structured parameter: JSON value in a JSON body, JSON text in a form."""
        value = self.raw(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise bad_request(f"can't parse {name} JSON object") from None

    def file_ref(self, name: str) -> str | Upload | None:
        """An InputFile parameter: an upload (direct or ``attach://``), a file_id or a URL."""
        value = self.raw(name)
        if isinstance(value, str) and value.startswith("attach://"):
            attached = self.raw(value.removeprefix("attach://"))
            if not isinstance(attached, Upload):
                raise bad_request(f"wrong file identifier/HTTP URL specified ({name})")
            return attached
        if value is None or isinstance(value, str | Upload):
            return value
        raise bad_request(f'field "{name}" must be of type InputFile or String')


async def _read_body(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise bad_request("can't parse JSON") from None
        if not isinstance(body, dict):
            raise bad_request("parameters must be a JSON object")
        return body
    values: dict[str, Any] = {}
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            values[key] = Upload(
                filename=value.filename,
                content_type=value.content_type,
                content=value.file.read(),
            )
        else:
            values[key] = value
    return values
