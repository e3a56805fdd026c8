"""YAML loading with one-line errors that name the file, the field (or line) and what is allowed.

Profiles and scenarios are small, hand-written files, so the reader refuses what only a hostile
or broken file contains, before anything is built from it: files over ``MAX_BYTES``, bytes that
are not UTF-8, control characters (NUL …), anchors and aliases (``&a``/``*a``: the "billion
laughs" expansion), nesting deeper than ``MAX_DEPTH``, more than ``MAX_NODES`` values, integers
beyond 64 bits and duplicate keys (both lines named). Values quoted in errors are cut to
``MAX_SHOWN`` characters.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from analogsim.errors import ConfigError

M = TypeVar("M", bound=pydantic.BaseModel)

#: Largest profile or scenario file read, bytes.
MAX_BYTES = 1_000_000
#: Deepest nesting of mappings and lists.
MAX_DEPTH = 32
#: Most YAML nodes (scalars, mappings, lists) in one file.
MAX_NODES = 100_000
#: Longest value quoted in an error message, characters.
MAX_SHOWN = 60
#: Integers must fit in 64 bits.
MAX_INT = 2**63 - 1

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class _Refused(Exception):
    """A YAML construct the reader refuses; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class _StrictLoader(_Loader):  # type: ignore[misc,valid-type]
    """Safe loader that refuses duplicate keys and integers beyond 64 bits."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused(key_node.start_mark.line + 1, "a key must be a plain value")
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _Refused(line, f"duplicate key {shown(key)} (lines {seen[key]} and "
                                     f"{line}); give each key once")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = str(node.value).replace("_", "").lstrip("+-")
        if len(digits) > 40:
            raise _Refused(node.start_mark.line + 1,
                           f"integer of {len(digits)} digits; at most 64 bits")
        value = super().construct_yaml_int(node)
        if abs(value) > MAX_INT:
            raise _Refused(node.start_mark.line + 1,
                           f"integer {shown(value)} does not fit in 64 bits")
        return value


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)
# YAML 1.1 reads 1e-3 and 1.5e3 (no dot, or no exponent sign) as strings; read them as the
# numbers everyone means (YAML 1.2).
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def shown(value: Any) -> str:
    """``repr(value)`` cut to ``MAX_SHOWN`` characters (never the repr of a huge value)."""
    if isinstance(value, (dict, list, tuple, set)) and len(value) > MAX_SHOWN:
        return f"<{type(value).__name__} of {len(value)} items>"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<integer of {value.bit_length()} bits>"
    if isinstance(value, str) and len(value) > 4 * MAX_SHOWN:
        value = value[:4 * MAX_SHOWN]
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        return f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 1] + "…"


def _check_events(text: str) -> None:
    """Refuse aliases, deep nesting and too many nodes from the event stream (iterative, so
    neither deep nesting nor alias expansion can exhaust the stack or memory)."""
    depth = nodes = 0
    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(line, "aliases (*name) are not allowed; write the value out")
        if isinstance(event, (yaml.ScalarEvent, yaml.MappingStartEvent,
                              yaml.SequenceStartEvent)):
            if getattr(event, "anchor", None) is not None:
                raise _Refused(line, "anchors (&name) are not allowed; write the value out")
            nodes += 1
            if nodes > MAX_NODES:
                raise _Refused(line, f"more than {MAX_NODES:,} values")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(line, f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def parse_yaml(text: str) -> Any:
    """Parse ``text`` with the checks above; raises ``_Refused`` or ``yaml.YAMLError``."""
    bad = _CONTROL.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        raise _Refused(line, f"control character {bad.group()!r} is not allowed")
    _check_events(text)
    return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass


def read_yaml(path: Path, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """Read a YAML mapping from ``path``; raise ``error`` with a one-line message otherwise."""
    if path.is_dir():
        raise error(f"{path}: a folder, not a YAML file")
    if not path.is_file():
        raise error(f"{path}: file not found")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise error(f"{path}: {size:,} bytes; a profile or scenario file has at most "
                        f"{MAX_BYTES:,}")
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise error(f"{path}: more than {MAX_BYTES:,} bytes")
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(f"{path}: line {line}: not UTF-8 text") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {' '.join(str(exc).split())}") from None
    try:
        data = parse_yaml(text)
    except _Refused as exc:
        raise error(f"{path}: line {exc.line}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise error(f"{path}: not valid YAML{where}: {problem[:200]}") from None
    except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
        raise error(f"{path}: not valid YAML: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of fields at the top level")
    return data


# Union-member tags in pydantic error locations: builtin and constrained types, and model
# classes (CamelCase; fields here are snake_case).
_TAG = re.compile(r"^(bool|int|float|str|none|dict|list|tuple|set|.*\[.*\]|(constrained|function|"
                  r"lax|json|is|literal)-.*|[A-Z][A-Za-z0-9]*)$")


def _display_path(loc: tuple[Any, ...], data: Any) -> str:
    """The dotted field path as the user wrote it: without union-member tags, and without the
    tag of a tagged union (``update.pulsed.dw_min`` → ``update.dw_min``), found by walking
    ``data``: a name that is neither the last part nor a key of the mapping it indexes."""
    parts, node = [], data
    for i, p in enumerate(loc):
        if isinstance(p, str) and _TAG.match(p):
            continue
        if (isinstance(p, str) and i < len(loc) - 1 and isinstance(node, dict)
                and p not in node):
            continue
        if isinstance(p, str) and parts and node is not None and not isinstance(
                node, (dict, list)):  # a field of a shorthand (``dataset: digits``)
            continue
        parts.append(str(p))
        if isinstance(node, dict):
            node = node.get(p)
        elif isinstance(node, list) and isinstance(p, int) and 0 <= p < len(node):
            node = node[p]
        else:
            node = None
    return ".".join(parts)


def _message(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if err["type"] == "finite_number":
        msg = "must be a finite number (no inf or nan)"
    got = err.get("input")
    if err["type"] in ("float_type", "int_type") and isinstance(got, (bool, str)):
        what = "an integer" if err["type"] == "int_type" else "a number"
        msg = f"must be {what}, not {'a boolean' if isinstance(got, bool) else 'a string'}"
    elif err["type"] == "int_type" and isinstance(got, float):
        msg = "must be an integer"
    return " ".join(msg.split())


def _hint(err: dict[str, Any], model: type[pydantic.BaseModel] | None) -> str:
    """``; did you mean …?`` for a misspelt field or choice, else ``""``."""
    from analogsim.config.suggest import choices, did_you_mean, fields_at

    loc = [p for p in err["loc"] if not (isinstance(p, str) and _TAG.match(p))]
    if err["type"] == "extra_forbidden" and model is not None and loc:
        return did_you_mean(loc[-1], fields_at(model, loc[:-1]))
    if err["type"] == "literal_error":
        return did_you_mean(err.get("input"), choices(str(err.get("ctx", {}).get("expected", ""))))
    return ""


def _misspelt_required(errors: list[Any], model: type[pydantic.BaseModel] | None
                       ) -> set[tuple[Any, ...]]:
    """Locations of required fields reported missing whose misspelling is reported as an
    unknown field beside them (``epcohs`` for ``epochs``): one line says both."""
    from analogsim.config.suggest import close_matches, fields_at

    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    if model is None or not missing:
        return set()
    found = set()
    for e in errors:
        loc = tuple(e["loc"])
        if e["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
            for name in close_matches(loc[-1], fields_at(model, loc[:-1])):
                if (*loc[:-1], name) in missing:
                    found.add((*loc[:-1], name))
    return found


def format_validation_error(source: str, exc: pydantic.ValidationError,
                            data: Any = None,
                            model: type[pydantic.BaseModel] | None = None) -> str:
    """One line per problem: ``source: field.path: message (got value)``, with a "did you
    mean" for a misspelt field (when ``model`` is given) or choice.

    A value that fits none of a union's members is reported against the member it fits best
    (fewest errors, then the deepest, then a range error before a type mismatch), so ``lr:
    true`` gives one line, not one per member; cross-field errors name their fields in the
    message.
    """
    entries: dict[str, Any] = {}  # group → error, or {member: [errors]} for a union
    errors = exc.errors(include_url=False)
    misspelt = _misspelt_required(errors, model)
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "missing" and loc in misspelt:
            continue  # its misspelling's line says it ("did you mean …?")
        tags = [i for i, p in enumerate(loc) if isinstance(p, str) and _TAG.match(p)]
        if not tags:
            entries.setdefault(".".join(map(str, loc)), [err])
            continue
        group = ".".join(map(str, loc[:tags[0]]))
        members = entries.setdefault(f"union:{group}", {})
        members.setdefault(loc[tags[0]], []).append(err)
    lines = []
    for errs in entries.values():
        if isinstance(errs, dict):
            errs = min(errs.values(), key=lambda es: (
                len(es), -max(len(e["loc"]) for e in es),
                all(str(e["type"]).endswith("_type") for e in es)))
        for err in errs:
            path = _display_path(tuple(err["loc"]), data)
            got = err.get("input")
            show = (err["type"] not in ("missing",) and not isinstance(got, dict)
                    and not (isinstance(got, str) and repr(got) in str(err["msg"])))
            shown_value = f" (got {shown(got)})" if show else ""
            where = f"{path}: " if path else ""
            lines.append(f"{source}: {where}{_message(err)}{shown_value}{_hint(err, model)}")
    return "\n".join(lines)


def validate(model: type[M], data: Any, source: str, error: type[ConfigError]) -> M:
    """Validate ``data`` into ``model``; raise ``error`` listing every problem with its field."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise error(format_validation_error(source, exc, data, model)) from None
    except RecursionError:
        raise error(f"{source}: nested too deeply") from None


def load_model(model: type[M], path: Path, error: type[ConfigError] = ConfigError) -> M:
    """Read and validate a YAML file into a pydantic model."""
    return validate(model, read_yaml(path, error), str(path), error)
