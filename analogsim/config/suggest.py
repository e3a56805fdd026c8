""""Did you mean …?" for a misspelt field name or choice in a YAML file."""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Iterable
from typing import Any

import pydantic


def close_matches(word: object, options: Iterable[str]) -> list[str]:
    """The (at most two) options closest to ``word``, closest first; none for a non-string."""
    if not isinstance(word, str):
        return []
    return difflib.get_close_matches(word, sorted(options), n=2, cutoff=0.6)


def did_you_mean(word: object, options: Iterable[str]) -> str:
    """``"; did you mean 'epochs'?"`` for the (at most two) closest options to ``word``,
    else ``""``."""
    close = close_matches(word, options)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def _models(annotation: Any) -> list[type[pydantic.BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions, lists, dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def fields_at(model: type[pydantic.BaseModel], loc: Iterable[object]) -> set[str]:
    """Field names allowed at ``loc`` (a pydantic error location, without the last item)."""
    current = [model]
    for part in loc:
        if isinstance(part, int) or not isinstance(part, str):
            continue
        nxt = [m for c in current if part in c.model_fields
               for m in _models(c.model_fields[part].annotation)]
        if not nxt:  # a discriminator tag ("pulsed") or a dict key: stay at this level
            continue
        current = nxt
    return {name for c in current for name in c.model_fields}


def choices(expected: str) -> list[str]:
    """The quoted choices of a pydantic literal error's ``expected`` text."""
    return re.findall(r"'([^']*)'", expected)
