"""YAML loading with one-line errors that name the file, the field and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from analogsim.errors import ConfigError

M = TypeVar("M", bound=pydantic.BaseModel)


def read_yaml(path: Path, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """Read a YAML mapping from ``path``; raise ``error`` with a one-line message otherwise."""
    if not path.is_file():
        raise error(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise error(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of fields at the top level")
    return data


def format_validation_error(source: str, exc: pydantic.ValidationError,
                            model: type[pydantic.BaseModel] | None = None) -> str:
    """One line per problem: ``source: field.path: message (got value)``, with a "did you
    mean" for a misspelt field (when ``model`` is given) or choice."""
    from analogsim.config.suggest import choices, did_you_mean, fields_at

    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int) or True) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        got = err.get("input")
        shown = "" if err["type"] in ("missing",) or isinstance(got, dict) else f" (got {got!r})"
        hint = ""
        if err["type"] == "extra_forbidden" and model is not None and err["loc"]:
            hint = did_you_mean(err["loc"][-1], fields_at(model, err["loc"][:-1]))
        elif err["type"] == "literal_error":
            hint = did_you_mean(got, choices(str(err.get("ctx", {}).get("expected", ""))))
        lines.append(f"{source}: {loc}: {msg}{shown}{hint}")
    return "\n".join(lines)


def validate(model: type[M], data: Any, source: str, error: type[ConfigError]) -> M:
    """Validate ``data`` into ``model``; raise ``error`` listing every problem with its field."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise error(format_validation_error(source, exc, model)) from None


def load_model(model: type[M], path: Path, error: type[ConfigError] = ConfigError) -> M:
    """Read and validate a YAML file into a pydantic model."""
    return validate(model, read_yaml(path, error), str(path), error)
