"""What every contract shares: strict validation, and one error line that names the field."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from edgeprune.errors import UserError


class Contract(BaseModel):
    """A document of a fixed shape: unknown fields and wrong types are errors, never coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1) + "\n"


C = TypeVar("C", bound=Contract)


def field_error(exc: ValidationError) -> str:
    """The first problem as ``field a.b.0.c: what is wrong``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(document)"
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) or got is None else f" (got {json.dumps(got, default=str)[:40]})"
    return f"field {where}: {first['msg'].lower()}{shown}"


def parse(cls: type[C], doc: Any, where: str, format_id: str, older: dict[str, str] | None = None) -> C:  # noqa: ANN401
    """Validate a decoded JSON document as ``cls``: the format is checked by name first (an older
    one gets the message ``older`` holds for it), then every field."""
    if not isinstance(doc, dict):
        raise UserError(f"{where}: not a JSON object (a {type(doc).__name__})")
    found = doc.get("format")
    if found != format_id:
        if isinstance(found, str) and older and found in older:
            raise UserError(f"{where}: format {found} is no longer read: {older[found]}")
        raise UserError(f"{where}: unsupported format {found!r} (this edgeprune reads {format_id})")
    try:
        return cls.model_validate(doc)
    except ValidationError as exc:
        raise UserError(f"{where}: {field_error(exc)}") from None


def decode(raw: bytes | str, where: str) -> Any:  # noqa: ANN401
    """JSON text (UTF-8) to Python, or a one-line error."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise UserError(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: not valid JSON ({exc})") from None
