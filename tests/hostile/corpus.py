"""Malformed device profiles and scenarios, generated from the shipped files.

Every case is one defect: a forbidden number, a wrong type, an unknown key at some level, a
broken cross-field rule, or a YAML trick (aliases, duplicate keys, deep nesting, huge numbers,
control bytes, huge files). ``expect`` lists strings of which the one-line error must contain
at least one: the field's name, or ``line `` for defects found before there are fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "devices"
SCENARIOS = (ROOT / "tests" / "scenarios" / "tiny.yaml", ROOT / "scenarios" / "quickstart.yaml",
             ROOT / "scenarios" / "robustness_read_noise.yaml")

#: Replacements for a numeric leaf, as YAML text: none is a valid value of any number field.
BAD_NUMBERS = (".inf", "-.inf", ".nan", "1e400", "-1.0e9", '"25.0"', "true")
#: Replacements for a boolean leaf.
BAD_BOOLS = ('"true"', "0.5", "2")
#: Replacements for a choice (Literal) leaf.
BAD_CHOICES = ("bogus", "7")
MARK = "__HOSTILE__"


@dataclass(frozen=True)
class Case:
    """One malformed file: ``text`` (bytes for non-UTF-8 content) and what its error names."""

    name: str
    text: str | bytes
    expect: tuple[str, ...]


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    else:
        yield path, node


def _mappings(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], dict]]:
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _mappings(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _mappings(v, (*path, i))


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    import copy

    out = copy.deepcopy(data)
    node = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _with_text(data: Any, path: tuple[Any, ...], literal: str) -> str:
    """``data`` as YAML with the leaf at ``path`` written as ``literal``."""
    return _dump(_set(data, path, MARK)).replace(MARK, literal, 1)


def _field(path: tuple[Any, ...]) -> str:
    """The innermost named field of ``path`` (list indices skipped)."""
    return next(str(p) for p in reversed(path) if isinstance(p, str))


def _leaf_cases(tag: str, data: dict, skip: set[str], per_leaf: int) -> Iterator[Case]:
    """``per_leaf`` bad values for every leaf outside ``skip``, rotating through the lists so
    that every bad value meets many fields."""
    for n, (path, value) in enumerate(_leaves(data)):
        if path[0] in skip:
            continue
        name = f"{tag}:{'.'.join(map(str, path))}"
        if isinstance(value, bool):
            bad: tuple[str, ...] = BAD_BOOLS
        elif isinstance(value, (int, float)):
            bad = BAD_NUMBERS
        elif isinstance(value, str):
            bad = BAD_CHOICES
        else:
            continue
        for literal in [bad[(n + k) % len(bad)] for k in range(min(per_leaf, len(bad)))]:
            yield Case(f"{name}={literal}", _with_text(data, path, literal), (_field(path),))


def _structure_cases(tag: str, data: dict) -> Iterator[Case]:
    """Unknown keys at every level; a mapping replaced by a list or a number."""
    for path, _ in _mappings(data):
        where = ".".join(map(str, path)) or "<top>"
        extra = _set(data, (*path, "colour"), "red") if path else {**data, "colour": "red"}
        yield Case(f"{tag}:unknown key in {where}", _dump(extra), ("colour",))
        if path and isinstance(path[-1], str):
            yield Case(f"{tag}:{where} as a list", _dump(_set(data, path, [1, 2])),
                       (_field(path),))


def _yaml_tricks(tag: str, base: str, first_key: str) -> Iterator[Case]:
    """Files that attack the reader; all are refused naming a line (or the file's size)."""
    laughs = ['lol: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev = "a" if i == 1 else f"a{i - 1}"
        laughs.append(f"l{i}: &a{i} [" + ",".join([f"*{prev}"] * 9) + "]")
    yield Case(f"{tag}:billion laughs", base + "\n".join(laughs) + "\n", ("line ",))
    yield Case(f"{tag}:one alias", base + "x: &v 1\ny: *v\n", ("line ",))
    yield Case(f"{tag}:1000 nested lists", base + "deep: " + "[" * 1000 + "]" * 1000 + "\n",
               ("line ",))
    yield Case(f"{tag}:200 nested mappings",
               base + "deep: " + "{a: " * 200 + "1" + "}" * 200 + "\n", ("line ",))
    yield Case(f"{tag}:5000-digit integer", base + "big: " + "9" * 5000 + "\n", ("line ",))
    yield Case(f"{tag}:2**70", base + f"big: {2**70}\n", ("line ",))
    yield Case(f"{tag}:NUL byte", base.replace("\n", "\x00\n", 1), ("line ",))
    yield Case(f"{tag}:escape byte", base + "x: \x1b[31m\n", ("line ",))
    yield Case(f"{tag}:not UTF-8", base.encode() + b"x: \xff\xfe\n", ("line ",))
    yield Case(f"{tag}:2 MB file", base + ("# padding\n" * 200_000), ("bytes",))
    yield Case(f"{tag}:duplicate top-level key", base + f"{first_key}: again\n",
               (first_key, "line "))
    yield Case(f"{tag}:python tag", base + "x: !!python/object/apply:os.system ['true']\n",
               ("line ",))
    yield Case(f"{tag}:bad indentation", base + "x:\n  - 1\n - 2\n", ("line ",))
    yield Case(f"{tag}:unclosed bracket", base + "x: [1, 2\n", ("line ",))
    yield Case(f"{tag}:top-level list", "- 1\n- 2\n", ("mapping",))
    yield Case(f"{tag}:empty file", "", ("mapping",))
    yield Case(f"{tag}:complex key", base + "? [1, 2]\n: 3\n", ("line ",))


# --- profiles ----------------------------------------------------------------------------------

def profile_cases() -> list[Case]:
    """At least 150 malformed profiles."""
    cases: list[Case] = []
    files = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(PROFILES.glob("*.yaml"))}
    pcm, rram = files["pcm"], files["rram"]
    cases += _leaf_cases("pcm", pcm, {"name", "description", "source"}, per_leaf=3)
    cases += _leaf_cases("rram", rram, set(rram) - {"update", "read_noise"}, per_leaf=3)
    for tag, data in files.items():
        cases += _structure_cases(tag, data)
    pcm_text = (PROFILES / "pcm.yaml").read_text()
    cases += _yaml_tricks("pcm", pcm_text, "read_noise")
    derived: list[tuple[str, tuple[Any, ...], Any, str]] = [
        ("σ polynomial negative inside [0, 1]", ("programming", "sigma_poly_uS"),
         [0.1, -2.0, 4.0], "sigma_poly_uS"),
        ("σ polynomial negative at 0", ("programming", "sigma_poly_uS"), [-0.1], "sigma_poly_uS"),
        ("σ polynomial of 7 terms", ("programming", "sigma_poly_uS"), [0.1] * 7, "sigma_poly_uS"),
        ("empty σ polynomial", ("programming", "sigma_poly_uS"), [], "sigma_poly_uS"),
        ("ν min above max", ("drift", "nu_mean"),
         {"ln_slope": 0.0, "intercept": 0.1, "min": 0.5, "max": 0.1}, "max"),
        ("ν above 1", ("drift", "nu_std", "max"), 1.5, "max"),
        ("stuck fractions above 1 together", ("faults",),
         {"stuck_at_min_fraction": 0.6, "stuck_at_max_fraction": 0.6}, "stuck_at"),
        ("stuck fraction true", ("faults", "stuck_at_min_fraction"), True,
         "stuck_at_min_fraction"),
        ("ADC bits without bound", ("adc",), {"bits": 8}, "output_bound"),
        ("bits 25", ("dac", "bits"), 25, "bits"),
        ("bits 0", ("adc", "bits"), 0, "bits"),
        ("bits 8.0", ("dac", "bits"), 8.0, "bits"),
        ("g_max 1e-300", ("mapping", "g_max_uS"), 1e-300, "g_max_uS"),
        ("1/f read longer than t0", ("read_noise", "t_read_s"), 100.0, "t_read_s"),
        ("read σ of 400 windows", ("read_noise", "absolute_uS"), 1e4, "absolute_uS"),
        ("programming σ of 40 windows", ("programming", "sigma_poly_uS"), [1000.0],
         "sigma_poly_uS"),
        ("g_max 1e308", ("mapping", "g_max_uS"), 1e308, "g_max_uS"),
        ("t0 1e-300", ("drift", "t0_s"), 1e-300, "t0_s"),
        ("t_read 0", ("read_noise", "t_read_s"), 0.0, "t_read_s"),
        ("g_rel_floor 1e-300", ("read_noise", "g_rel_floor"), 1e-300, "g_rel_floor"),
        ("levels 1", ("mapping", "levels"), 1, "levels"),
        ("levels 2**40", ("mapping", "levels"), 2**40, "levels"),
        ("tile_rows 0", ("mapping", "tile_rows"), 0, "tile_rows"),
        ("scale as number", ("mapping", "scale"), 1, "scale"),
        ("differential as string", ("mapping", "differential"), "yes please", "differential"),
        ("update kind unknown", ("update",), {"kind": "magic"}, "kind"),
        ("pulsed w_min positive", ("update",), {"kind": "pulsed", "w_min": 0.5}, "w_min"),
        ("pulsed max_pulses 0", ("update",), {"kind": "pulsed", "max_pulses": 0}, "max_pulses"),
        ("pulsed init_fill 0", ("update",), {"kind": "pulsed", "init_fill": 0.0}, "init_fill"),
        ("pulsed dw_min 1e-300", ("update",), {"kind": "pulsed", "dw_min": 1e-300}, "dw_min"),
        ("name ..", ("name",), "..", "name"),
        ("name with slash", ("name",), "a/b", "name"),
        ("name empty", ("name",), "", "name"),
        ("name a number", ("name",), 7, "name"),
        ("description 20000 characters", ("description",), "x" * 20_000, "description"),
        ("source a list", ("source",), ["a"], "source"),
    ]
    for what, path, value, field in derived:
        cases.append(Case(f"pcm:{what}", _dump(_set(pcm, path, value)), (field,)))
    no_source = {k: v for k, v in pcm.items() if k != "source"}
    cases.append(Case("pcm:source missing", _dump(no_source), ("source",)))
    return cases


# --- scenarios ---------------------------------------------------------------------------------

def scenario_cases() -> list[Case]:
    """At least 120 malformed scenarios."""
    cases: list[Case] = []
    tiny = yaml.safe_load(SCENARIOS[0].read_text())
    for path in SCENARIOS:
        data = yaml.safe_load(path.read_text())
        tag = path.stem
        cases += _leaf_cases(tag, data, {"name", "description", "profiles", "baselines",
                                         "dataset"} | ({"rules"} if tag != "tiny" else set()),
                            per_leaf=2)
        cases += _structure_cases(tag, data)
    cases += _yaml_tricks("tiny", SCENARIOS[0].read_text(), "epochs")
    year = 31_536_000
    SEARCH = {"low": 1e-3, "high": 1.0, "epochs": 1}
    VALIDATED = {"name": "digits", "n_train": 200, "n_test": 100, "validation": 0.1}
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("name ..", {"name": ".."}, "name"),
        ("name .", {"name": "."}, "name"),
        ("name with slash", {"name": "../x"}, "name"),
        ("name hidden", {"name": ".hidden"}, "name"),
        ("3e16 refresh events", {"timeline": {"refresh_every_s": 1e-9,
                                              "after_programming_s": [year]}},
         "refresh_every_s"),
        ("1e6 refresh events", {"timeline": {"refresh_every_s": 1.0,
                                             "after_programming_s": [1e6]}}, "refresh_every_s"),
        ("after_programming_s 1e400", {"timeline": {"after_programming_s": [float("inf")]}},
         "after_programming_s"),
        ("after_programming_s repeated", {"timeline": {"after_programming_s": [1.0, 1.0]}},
         "after_programming_s"),
        ("step_s 1e300", {"timeline": {"step_s": 1e300}}, "step_s"),
        ("hidden 2e9", {"model": {"hidden": [2_000_000_000]}}, "hidden"),
        ("hidden 100 layers", {"model": {"hidden": [4] * 100}}, "hidden"),
        ("model kind unknown", {"model": {"kind": "transformer"}}, "kind"),
        ("slope 2", {"model": {"hidden": [4], "slope": 2.0}}, "slope"),
        ("seed 2**40", {"seeds": [2**40]}, "seeds"),
        ("seeds repeated", {"seeds": [1, 1]}, "seeds"),
        ("seeds empty", {"seeds": []}, "seeds"),
        ("epochs a string", {"epochs": "1"}, "epochs"),
        ("epochs 0", {"epochs": 0}, "epochs"),
        ("epochs 1e9", {"epochs": 1_000_000_000}, "epochs"),
        ("batch_size 1.5", {"batch_size": 1.5}, "batch_size"),
        ("lr true", {"lr": True}, "lr"),
        ("lr 0", {"lr": 0.0}, "lr"),
        ("lr inf", {"lr": float("inf")}, "lr"),
        ("lr for a rule not here", {"lr": {"danp": 0.01, "bp": 0.1, "np": 1.0}}, "lr"),
        ("lr missing a rule", {"lr": {"danp": 0.01}}, "lr"),
        ("lr and lr_search", {"lr_search": SEARCH}, "lr_search"),
        ("neither lr nor lr_search", {"lr": None}, "lr_search"),
        ("lr_search without a validation split", {"lr": None, "lr_search": SEARCH},
         "validation"),
        ("lr_search high inf", {"lr": None, "dataset": VALIDATED,
                                "lr_search": {**SEARCH, "high": float("inf")}}, "high"),
        ("lr_search high below low", {"lr": None, "dataset": VALIDATED,
                                      "lr_search": {**SEARCH, "high": 1e-4}}, "high"),
        ("lr_search low nan", {"lr": None, "dataset": VALIDATED,
                               "lr_search": {**SEARCH, "low": float("nan")}}, "low"),
        ("lr_search points 1", {"lr": None, "dataset": VALIDATED,
                                "lr_search": {**SEARCH, "points": 1}}, "points"),
        ("lr_search refine odd", {"lr": None, "dataset": VALIDATED,
                                  "lr_search": {**SEARCH, "refine": 3}}, "refine"),
        ("lr_search epochs and steps", {"lr": None, "dataset": VALIDATED,
                                        "lr_search": {**SEARCH, "steps": 10}}, "steps"),
        ("lr from a folder without searches", {"lr": {"from": "."}}, "lr"),
        ("validation 1", {"dataset": {**VALIDATED, "validation": 1.0}}, "validation"),
        ("n_reps 0", {"evaluation": {"n_reps": 0}}, "n_reps"),
        ("init unknown", {"model": {"hidden": [4], "init": "zeros"}}, "init"),
        ("rule backward unknown", {"rules": [{"name": "bp", "backward": "psychic"}, "danp"]},
         "backward"),
        ("rule unknown", {"rules": ["sgd"]}, "rules.0: "),
        ("rule sigma inf", {"rules": [{"name": "danp", "sigma": float("inf")}, "bp"]}, "sigma"),
        ("rule sigma a string", {"rules": [{"name": "danp", "sigma": "0.1"}, "bp"]}, "sigma"),
        ("dnp with sigma 0", {"rules": [{"name": "dnp", "sigma": 0.0}, "bp"],
                              "lr": {"dnp": 0.01, "bp": 0.1}}, "sigma"),
        ("rule listed twice", {"rules": ["danp", "danp", "bp"]}, "rules"),
        ("rule baseline and baselines", {"rules": [{"name": "danp", "baseline": "noisy"},
                                                   "bp"]}, "baseline"),
        ("rule seed -1", {"rules": [{"name": "danp", "seed": -1}, "bp"]}, "seed"),
        ("rule check_every 0", {"rules": [{"name": "danp", "check_every": 0}, "bp"]},
         "check_every"),
        ("baselines unknown", {"baselines": ["dirty"]}, "baselines"),
        ("dataset unknown", {"dataset": "imagenet"}, "dataset: "),
        ("dataset n_train 0", {"dataset": {"name": "digits", "n_train": 0}}, "n_train"),
        ("dataset n_train 1e9", {"dataset": {"name": "digits", "n_train": 10**9}}, "n_train"),
        ("dataset seed a float", {"dataset": {"name": "digits", "seed": 1.5}}, "seed"),
        ("dataset option inf", {"dataset": {"name": "teacher",
                                            "options": {"noise": float("inf")}}}, "options"),
        ("dataset a list", {"dataset": ["digits"]}, "dataset"),
        ("generated set of 1e12 rows", {"dataset": {"name": "teacher",
                                                    "options": {"n_train": 10**12}}}, "n_train"),
        ("generated set too big for memory", {"dataset": {"name": "teacher", "options": {
            "n_train": 10**7, "n_inputs": 10**7}}}, "dataset"),
        ("model too big for memory", {"model": {"hidden": [16_384] * 64}}, "model"),
        ("alignment repeats 1", {"alignment": {"repeats": 1}}, "repeats"),
        ("evaluation every 0", {"evaluation": {"every_epochs": 0}}, "every_epochs"),
        ("evaluation batch -5", {"evaluation": {"batch_size": -5}}, "batch_size"),
        ("device tpu", {"device": "tpu"}, "device"),
        ("profiles empty", {"profiles": []}, "profiles"),
        ("profile unknown", {"profiles": ["unobtainium"]}, "profiles"),
        ("profile a number", {"profiles": [7]}, "profiles"),
        ("sweep of no field", {"sweep": {"field": "read_noise.colour", "values": [1.0]}},
         "read_noise.colour"),
        ("sweep value inf", {"sweep": {"field": "read_noise.q_coeff",
                                       "values": [float("inf")]}}, "values"),
        ("sweep value out of range", {"sweep": {"field": "read_noise.q_coeff",
                                                "values": [1e9]}}, "q_coeff"),
        ("sweep value a string", {"sweep": {"field": "mapping.g_max_uS", "values": ["25"]}},
         "g_max_uS"),
        ("sweep values repeated", {"sweep": {"field": "read_noise.q_coeff",
                                             "values": [0.1, 0.1]}}, "values"),
        ("sweep field path injection", {"sweep": {"field": "../x", "values": [1]}}, "field"),
        ("description a mapping", {"description": {"a": 1}}, "description"),
    ]
    for what, changes, field in bad:
        data = {**tiny, **changes}
        for k, v in changes.items():
            if v is None:
                del data[k]
        cases.append(Case(f"tiny:{what}", _dump(data), (field,)))
    for key in ("dataset", "rules", "seeds", "epochs", "batch_size", "profiles"):
        cases.append(Case(f"tiny:{key} missing",
                          _dump({k: v for k, v in tiny.items() if k != key}), (key,)))
    return cases


def write(cases: list[Case], folder: Path) -> list[tuple[Case, Path]]:
    """Each case as ``folder/NNN.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, case in enumerate(cases):
        path = folder / f"{i:03d}.yaml"
        if isinstance(case.text, bytes):
            path.write_bytes(case.text)
        else:
            path.write_text(case.text, encoding="utf-8")
        out.append((case, path))
    return out


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("hostile-corpus")
    for kind, cs in (("profiles", profile_cases()), ("scenarios", scenario_cases())):
        write(cs, target / kind)
        print(f"{len(cs)} {kind} → {target / kind}")
