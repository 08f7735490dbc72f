"""Pydantic's validation errors as lines a non-programmer can act on: the key
path, and what is wrong in words; inputs are named by type, never echoed
(they may be secrets)."""

from __future__ import annotations

from datetime import date, datetime, time
from types import UnionType
from typing import Any

from pydantic import BaseModel, ValidationError

from bot.config.base import Problem, did_you_mean


def from_pydantic(exc: ValidationError, prefix: str, model: type[BaseModel]) -> list[Problem]:
    """Turn Pydantic's errors into key-path lines a non-programmer can act on."""
    found: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        key = prefix
        for part in loc:
            if isinstance(part, int):
                key += f"[{part}]"
            else:
                key = f"{key}.{part}" if key else str(part)
        found.append((key or "(top level)", _describe(err, loc, model)))
    return found


_TYPE_WORDS = {
    "string_type": "expected a string (in quotes)",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "list_type": 'expected a list, e.g. ["a", "b"]',
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "dict_type": "expected a table",
    "path_type": "expected a path (a string)",
    "is_instance_of": "expected a path (a string)",
}


def _describe(err: Any, loc: tuple[int | str, ...], model: type[BaseModel]) -> str:
    """Words for one Pydantic error; inputs are named by type, never echoed (secrets)."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        owner = _model_at(model, loc[:-1])
        choices = list(owner.model_fields) if owner else []
        return "unknown key" + did_you_mean(name, choices)
    if kind in _TYPE_WORDS:
        return f"{_TYPE_WORDS[kind]}, got {_toml_type(err.get('input'))}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', 'one of the allowed values')}, got {err['input']!r}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    message = str(err["msg"])
    return message[:1].lower() + message[1:]


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model owning a location, to list the keys it accepts."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        current = fields[part].annotation
        args = getattr(current, "__args__", None)
        if args:  # list[Model] and Model | None
            current = next(
                (a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), current
            )
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


_TOML_TYPE_NAMES: tuple[tuple[type | UnionType, str], ...] = (
    (bool, "true/false"),  # before int: a bool is an int to Python
    (int, "a number"),
    (float, "a decimal number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "a table"),
    (datetime | date | time, "a date/time"),
)


def _toml_type(value: Any) -> str:
    """Name a value's TOML type without printing it."""
    return next((name for kind, name in _TOML_TYPE_NAMES if isinstance(value, kind)),
                type(value).__name__)
