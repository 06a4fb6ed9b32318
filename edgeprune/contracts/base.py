"""What every contract shares: strict validation, and one error line that names the field."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from edgeprune.errors import UserError, one_line


class Contract(BaseModel):
    """A document of a fixed shape: unknown fields and wrong types are errors, never coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def to_json(self) -> str:
        """Standard JSON: a NaN or an infinity (which ``json`` would write as the non-standard
        ``NaN``/``Infinity`` that strict readers refuse) is a :class:`UserError` naming the field."""
        doc = self.model_dump(mode="json")
        bad = nonfinite_field(doc)
        if bad is not None:
            where, value = bad
            raise UserError(f"{type(self).__name__}: field {where} is {value}, which JSON cannot hold; not writing it")
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"


def nonfinite_field(doc: Any, where: str = "") -> tuple[str, float] | None:  # noqa: ANN401
    """The first NaN or infinity in a decoded JSON document, as (``a.b.0.c``, value)."""
    if isinstance(doc, float):
        return None if math.isfinite(doc) else (where or "(document)", doc)
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list | tuple) else ()
    for key, value in items:
        found = nonfinite_field(value, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


C = TypeVar("C", bound=Contract)


def field_error(exc: ValidationError) -> str:
    """The first problem as ``field a.b.0.c: what is wrong``."""
    first = exc.errors()[0]
    where = one_line(".".join(str(p) for p in first["loc"])) or "(document)"
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) or got is None else f" (got {one_line(repr(got), 40)})"
    return f"field {where}: {one_line(first['msg'].lower(), 200)}{shown}"


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
    except RecursionError:
        raise UserError(f"{where}: not a document edgeprune writes (nested too deeply)") from None
    except ValidationError as exc:
        raise UserError(f"{where}: {field_error(exc)}") from None


def read_document(cls: type[C], path: Path, format_id: str, older: dict[str, str] | None = None) -> C:
    """:func:`parse` of a JSON file; a file that cannot be read is one line naming it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {one_line(exc)}") from None
    return parse(cls, decode(raw, str(path)), str(path), format_id, older)


class NotJson(ValueError):
    """Why some bytes are not a JSON document, as a phrase for an error line."""


def load_json(raw: bytes | str, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> Any:  # noqa: ANN401
    """UTF-8 JSON text to Python; whatever is wrong (not UTF-8, nested too deeply for the parser,
    not JSON, a number too long to convert) is a :class:`NotJson` with a one-line reason."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except UnicodeDecodeError:
        raise NotJson("not UTF-8 text") from None
    except RecursionError:
        raise NotJson("nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of thousands of digits
        raise NotJson(f"not valid JSON ({one_line(exc)})") from None


def decode(raw: bytes | str, where: str) -> Any:  # noqa: ANN401
    """JSON text (UTF-8) to Python, or a one-line error."""
    try:
        return load_json(raw)
    except NotJson as exc:
        raise UserError(f"{where}: {exc}") from None
