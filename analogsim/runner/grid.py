"""Grid expansion: a scenario → profile variants → cells (variant × rule × baseline × seed).

``plan`` resolves and checks everything a run needs — profiles, the sweep, rule/baseline
combinations, the data and the model — so that every mistake surfaces as one
``ScenarioError`` line before any training starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from analogsim.config.profile import DeviceProfile, load_profile
from analogsim.config.rulespec import RuleSpec
from analogsim.config.scenario import LRFrom, Scalar, Scenario
from analogsim.errors import DataError, ProfileError, ScenarioError
from analogsim.runner.build import digital_network
from analogsim.runner.data import load_splits
from analogsim.runner.lr_store import SEARCH, chosen_lr, group_of


@dataclass(frozen=True)
class ProfileVariant:
    """One device of the grid: a listed profile, possibly with the swept field set."""

    profile: DeviceProfile
    label: str  # "pcm", or "pcm read_noise.q_coeff=0.02" under a sweep
    sweep_field: str | None = None
    sweep_value: Scalar = None

    @property
    def name(self) -> str:
        """The listed profile's name (without the sweep)."""
        return self.profile.name


@dataclass(frozen=True)
class Cell:
    """One training run: a profile variant, a rule with its baseline resolved, a seed."""

    index: int
    id: str
    variant: ProfileVariant
    rule: RuleSpec  # baseline resolved to clean/noisy (BP: as given, unused)
    rule_key: str  # the scenario's key of the rule entry (name, or name + options)
    rule_label: str  # e.g. "DANP (noisy)"
    baseline: str | None  # "clean" | "noisy"; None for BP/DBP (no baseline pass)
    seed: int
    lr: float | None  # None: chosen by the scenario's η search

    @property
    def group(self) -> str:
        """Its η search group: the id without the seed (``pcm/danp-noisy``)."""
        return group_of(self.id)


@dataclass(frozen=True)
class DataInfo:
    """What the model needs to know of the data."""

    input_shape: tuple[int, ...]
    n_outputs: int
    task: str
    n_train: int  # training samples (the validation split excluded)
    n_val: int  # validation samples (0: none)
    n_test: int


#: Scenario fields (section, field) added after results folders were first recorded, with the
#: default that plans the same run as before: at that default they stay out of ``Grid.hash``,
#: so a folder recorded earlier still resumes.
LATER_FIELDS: dict[tuple[str, str], Any] = {("lr_search", "baseline"): None}


@dataclass(frozen=True)
class Grid:
    """The planned run: its cells in canonical order, and the combinations left out."""

    scenario: Scenario
    source: str
    variants: list[ProfileVariant]
    cells: list[Cell]
    data: DataInfo
    skipped: list[str] = field(default_factory=list)

    @property
    def hash(self) -> str:
        """sha256 of the scenario and the full contents of every profile variant (scenario
        fields added since results were first recorded count only when set: ``LATER_FIELDS``)."""
        scenario = self.scenario.model_dump(mode="json")
        for (part, key), default in LATER_FIELDS.items():
            if isinstance(scenario.get(part), dict) and scenario[part].get(key) == default:
                scenario[part].pop(key, None)
        content = {"scenario": scenario,
                   "profiles": [v.profile.model_dump(mode="json") for v in self.variants]}
        if isinstance(self.scenario.lr, LRFrom):  # the η read from the other folder
            content["lr"] = {c.id: c.lr for c in self.cells}
        blob = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _fmt(value: Scalar) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _is_path(entry: str) -> bool:
    return Path(entry).suffix in (".yaml", ".yml") or "/" in entry or "\\" in entry


def profile_variants(scenario: Scenario, source: str) -> list[ProfileVariant]:
    """Load every listed profile (paths relative to the scenario file), apply the timeline's
    drift-compensation override and the sweep. Raises ScenarioError naming the field."""
    bases: list[DeviceProfile] = []
    for i, entry in enumerate(scenario.profiles):
        where = scenario.resolve(entry) if _is_path(entry) else entry
        try:
            prof = load_profile(where)
            comp = scenario.timeline.drift_compensation
            if comp is not None:
                prof = prof.with_field("drift.compensation", comp)
        except ProfileError as err:
            raise ScenarioError(f"{source}: profiles.{i}: {err}") from None
        bases.append(prof)
    names = [p.name for p in bases]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ScenarioError(f"{source}: profiles: two profiles are named {dup[0]}; "
                            "give each a distinct name")
    sweep = scenario.sweep
    if sweep is None:
        return [ProfileVariant(p, p.name) for p in bases]
    out = []
    for prof in bases:
        for value in sweep.values:
            try:
                swept = prof.with_field(sweep.field, value)
            except ProfileError as err:
                where = "sweep.field" if "no such field" in str(err) else "sweep.values"
                raise ScenarioError(f"{source}: {where}: {err}") from None
            out.append(ProfileVariant(swept, f"{prof.name} {sweep.field}={_fmt(value)}",
                                      sweep.field, value))
    return out


def rule_label(spec: RuleSpec, key: str) -> str:
    """Plot/table label: ``DANP (noisy)``, plus the options that tell apart two entries of
    the same rule (``DANP (noisy) sigma=0.0``)."""
    extra = key[len(spec.name):]
    return spec.label + extra


def _cells(scenario: Scenario, variants: list[ProfileVariant],
           source: str) -> tuple[list[Cell], list[str]]:
    cells: list[Cell] = []
    skipped: list[str] = []
    keys = scenario.rule_keys()
    for variant in variants:
        for k, (spec, key) in enumerate(zip(scenario.rules, keys, strict=True)):
            if spec.base == "bp":
                options: list[str | None] = [None]
            else:
                options = list(scenario.baselines or [spec.baseline])
            seen: list[str | None] = []
            for asked in options:
                resolved = asked
                if asked == "auto":
                    resolved = "clean" if variant.profile.is_ideal else "noisy"
                if resolved in seen:
                    continue
                seen.append(resolved)
                if resolved == "clean" and not variant.profile.is_ideal:
                    what = f"{variant.label} × {spec.name} baseline clean"
                    if scenario.skip_impossible:
                        skipped.append(what)
                        continue
                    raise ScenarioError(
                        f"{source}: baselines: 'clean' needs a noise-free pass, but profile "
                        f"{variant.label} is hardware (not ideal), so {spec.name} cannot run "
                        "with it; use 'noisy' or 'auto', or set skip_impossible: true")
                cell_spec = spec if resolved is None else spec.model_copy(
                    update={"baseline": resolved})
                label = rule_label(cell_spec, key)
                tag = key.replace(" ", "_") + ("" if resolved is None else f"-{resolved}")
                for seed in scenario.seeds:
                    cells.append(Cell(
                        index=len(cells), id=f"{variant.label.replace(' ', ':')}/{tag}/s{seed}",
                        variant=variant, rule=cell_spec, rule_key=key, rule_label=label,
                        baseline=resolved, seed=seed, lr=scenario.lr_for(k)))
    return cells, skipped


def check_data(scenario: Scenario, source: str) -> DataInfo:
    """Load the data once (this process caches it) and build the model once on it."""
    flatten = scenario.model.kind == "mlp"
    try:
        train, val, test = load_splits(scenario.dataset, scenario.folder, flatten)
    except DataError as err:
        raise ScenarioError(f"{source}: dataset: {err}") from None
    except MemoryError:
        raise ScenarioError(f"{source}: dataset: out of memory loading it; ask for fewer or "
                            "smaller samples (n_train, n_test, options)") from None
    try:
        digital_network(scenario.model, train.input_shape, train.n_outputs, 0)
    except ValueError as err:
        raise ScenarioError(f"{source}: model: {err}") from None
    except (MemoryError, RuntimeError) as err:  # torch's allocator raises RuntimeError
        if isinstance(err, RuntimeError) and "alloc" not in str(err).lower():
            raise
        raise ScenarioError(f"{source}: model: out of memory building it; use narrower or "
                            "fewer hidden layers") from None
    return DataInfo(train.input_shape, train.n_outputs, train.task, len(train),
                    0 if val is None else len(val), len(test))


def search_group(c: Cell, baseline: str | None) -> str:
    """The η search group that decides ``c``'s η when every baseline of a rule takes the η
    searched on ``baseline`` (``pcm/danp-noisy`` → ``pcm/danp-clean``); ``c.group`` when
    ``baseline`` is None or the rule has no baseline (BP)."""
    if baseline is None or c.baseline is None:
        return c.group
    return c.group[: -len(c.baseline)] + baseline


def search_baseline(scenario: Scenario) -> str | None:
    """The baseline every η search of ``scenario`` runs on (``lr_search.baseline``), or None
    (a search per baseline, or no search)."""
    return scenario.lr_search.baseline if scenario.lr_search is not None else None


def check_search_baseline(scenario: Scenario, cells: list[Cell], source: str) -> None:
    """``lr_search.baseline`` names a baseline every perturbation rule's cells include."""
    use = search_baseline(scenario)
    if use is None:
        return
    groups = {c.group for c in cells}
    missing = sorted({search_group(c, use) for c in cells} - groups)
    if missing:
        raise ScenarioError(f"{source}: lr_search.baseline: {use!r}, but the grid has no cells "
                            f"of {', '.join(missing)} to search on; add {use!r} to the "
                            "baselines or leave lr_search.baseline unset")


def lr_from_folder(scenario: Scenario, cells: list[Cell], source: str) -> list[Cell]:
    """``cells`` with the η an earlier run's search chose for their group (``lr: {from:}``)."""
    assert isinstance(scenario.lr, LRFrom)
    folder = scenario.resolve(scenario.lr.from_)
    if not (folder / SEARCH).is_file():
        raise ScenarioError(f"{source}: lr.from: {folder} holds no {SEARCH} (a results folder "
                            "of a run with lr_search)")
    chosen = chosen_lr(folder)
    use = scenario.lr.baseline
    missing = sorted({search_group(c, use) for c in cells if search_group(c, use) not in chosen})
    if missing:
        raise ScenarioError(f"{source}: lr.from: {folder} has no finished η search for "
                            f"{', '.join(missing)} (it has: {', '.join(sorted(chosen)) or 'none'})")
    return [dataclasses.replace(c, lr=chosen[search_group(c, use)]) for c in cells]


def plan(scenario: Scenario, source: str = "<scenario>", device: str | None = None,
         check_device: bool = True) -> Grid:
    """Expand ``scenario`` into its grid, checking everything that can be checked up front.

    ``device`` overrides the scenario's; ``check_device``: fail if CUDA is asked for but
    absent here (off for cluster executors whose workers hold the GPUs).
    """
    if device is not None and device != scenario.device:
        scenario = scenario.model_copy(update={"device": device})
    if device not in (None, "cpu", "cuda"):
        raise ScenarioError(f"{source}: device: must be cpu or cuda, got {device!r}")
    if check_device and scenario.device == "cuda" and not torch.cuda.is_available():
        raise ScenarioError(f"{source}: device: cuda asked for, but torch sees no CUDA device "
                            "here; use --device cpu")
    variants = profile_variants(scenario, source)
    cells, skipped = _cells(scenario, variants, source)
    if not cells:
        raise ScenarioError(f"{source}: every cell was skipped as impossible; nothing to run")
    if isinstance(scenario.lr, LRFrom):
        cells = lr_from_folder(scenario, cells, source)
    check_search_baseline(scenario, cells, source)
    info = check_data(scenario, source)
    return Grid(scenario, source, variants, cells, info, skipped)
