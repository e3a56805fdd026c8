"""``Scenario``: one experiment grid as validated, frozen data.

A scenario names a dataset, a model, device profiles (optionally swept over one profile
field), learning rules, baselines, seeds, training settings and a device-time timeline. The
runner expands it into cells (profile variant × rule × baseline × seed). Everything a
scenario can get wrong is caught here or when the grid is planned, before any training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from analogsim.config.rulespec import RuleSpec
from analogsim.config.strict import MAX_SEED, Count, Seconds, Seed, StrictData
from analogsim.config.yaml_io import read_yaml, validate
from analogsim.errors import DataError, ScenarioError

Scalar = bool | int | float | str | None

#: Base of every model here: strict, finite, no unknown keys (config/strict.py).
_Data = StrictData

#: Widest hidden layer (a 16384² float32 weight matrix is 1 GiB).
MAX_WIDTH = 16_384
#: Largest learning rate accepted.
MAX_LR = 1e6
#: Most re-programmings a timeline may schedule after training.
MAX_REFRESHES = 100_000


class DatasetSpec(_Data):
    """Which data, and how much of it.

    ``n_train``/``n_test`` keep a seeded random subset of that many samples (``seed``);
    ``options`` go to generated sets (e.g. ``n_inputs`` of ``teacher``).
    """

    name: str = Field(description="a name from `analogsim data list`, e.g. digits")
    root: str | None = Field(None, description="folder searched first for file-based sets; "
                             "relative to the scenario file")
    standardize: bool = Field(False, description="per-feature z-score with train statistics")
    n_train: Count | None = Field(None, description="random subset of the train split")
    n_test: Count | None = Field(None, description="random subset of the test split")
    seed: int = Field(0, ge=0, le=MAX_SEED - 1,
                      description="draw of generated sets and of the subsets, 0 … 2³²−2")
    validation: float = Field(
        0.0, ge=0, lt=1, description="fraction of the train split held out as the validation "
        "split (seeded by ``seed``), in [0, 1); η searches and peak-epoch choices read it, "
        "never the test split")
    options: dict[str, Scalar | list[int]] = Field(
        default_factory=dict, description="options of generated sets")

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from analogsim.data.registry import canonical

        try:
            return canonical(name)
        except DataError as err:
            raise PydanticCustomError("unknown_dataset", str(err)) from None


Init = Literal["he", "normal_fan_in", "torch_default"]


class MLPSpec(_Data):
    """Fully connected leaky-ReLU net; input and output widths come from the data."""

    kind: Literal["mlp"] = "mlp"
    hidden: list[Annotated[int, Field(ge=1, le=MAX_WIDTH)]] = Field(
        default_factory=lambda: [256, 256, 256], max_length=64,
        description=f"hidden layer widths, each 1 … {MAX_WIDTH}; at most 64 layers")
    slope: float = Field(0.01, ge=0, le=1, description="leaky-ReLU negative slope, in [0, 1]")
    init: Init = Field("he", description="initial weights: he (N(0, 2/((1+slope²) fan_in)), "
                       "zero bias), normal_fan_in (N(0, 1/fan_in), zero bias) or torch_default "
                       "(U(±1/√fan_in) weights and bias)")
    bias: bool = Field(True, description="layers with a bias")


class ConvNetSpec(_Data):
    """The paper's convnet (3 conv layers, FC 1024, output); needs image data."""

    kind: Literal["convnet"] = "convnet"
    slope: float = Field(0.01, ge=0, le=1, description="leaky-ReLU negative slope, in [0, 1]")
    init: Init = Field("he", description="as the MLP's")
    bias: bool = Field(True, description="layers with a bias")


ModelSpec = Annotated[MLPSpec | ConvNetSpec, Field(discriminator="kind")]


class SweepSpec(_Data):
    """One profile field varied over values, applied to every listed profile."""

    field: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
                       description="dotted profile field, e.g. read_noise.q_coeff")
    values: list[Scalar] = Field(min_length=1, max_length=1000,
                                 description="values the field takes (1 … 1000 of them)")

    @field_validator("values")
    @classmethod
    def _distinct(cls, values: list[Scalar]) -> list[Scalar]:
        if len({repr(v) for v in values}) != len(values):
            raise ValueError("values must be distinct")
        return values


class LRSearchSpec(_Data):
    """η search per profile variant × rule × baseline (or per variant × rule, on one baseline,
    with ``baseline``), on the validation split: trial runs
    on a coarse log grid ``low`` … ``high`` (``points`` values), then ``refine`` values on a
    finer log grid between the best coarse value's neighbours; the best final validation
    metric wins. Each trial trains ``epochs`` epochs or ``steps`` steps (give one)."""

    low: float = Field(gt=0, le=MAX_LR, description=f"smallest η of the coarse grid, in "
                       f"(0, {MAX_LR:g}]")
    high: float = Field(gt=0, le=MAX_LR, description=f"largest η of the coarse grid, in "
                        f"(0, {MAX_LR:g}]")
    points: int = Field(5, ge=2, le=100,
                        description="η values of the coarse log grid (ends included), 2 … 100")
    refine: int = Field(4, ge=0, le=100, multiple_of=2, description="η values of the refined "
                        "grid, half on each side of the best coarse value (even, 0 … 100; 0: "
                        "none)")
    epochs: int | None = Field(None, ge=1, le=1_000_000,
                               description="epochs of each trial run, 1 … 1e6")
    steps: int | None = Field(None, ge=1, le=100_000_000,
                              description="training steps of each trial run, 1 … 1e8")
    baseline: Literal["clean", "noisy"] | None = Field(
        None, description="search on this baseline only and give its η to every baseline of "
        "the rule (the paper's one η per rule for both baselines); unset: a search per baseline")

    @model_validator(mode="after")
    def _consistent(self) -> LRSearchSpec:
        if not self.high > self.low:
            raise ValueError("high must be greater than low")
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("give exactly one of epochs and steps (the length of a trial)")
        return self


class LRFrom(_Data):
    """η per profile variant × rule × baseline as chosen by an earlier run's η search."""

    from_: str = Field(alias="from", min_length=1, description="results folder holding "
                       "lr_search.jsonl (relative to the scenario file)")
    baseline: Literal["clean", "noisy"] | None = Field(
        None, description="take every baseline's η from this baseline's search (the paper's "
        "one η per rule for both baselines); unset: each baseline from its own search")


class AlignmentSpec(_Data):
    """Angles of each perturbation rule's update to BP's on the untrained network, per layer
    (the paper's Fig. 1): one batch, ``repeats`` fresh networks and perturbations."""

    repeats: int = Field(10, ge=2, le=100_000,
                         description="fresh networks / perturbations (s.e.m. over them), 2 … 1e5")
    batch_size: Count = Field(1000, description="train samples in the batch")


class EvaluationSpec(_Data):
    """When and on what the learning curves are measured (on the device, noise included)."""

    every_epochs: int = Field(1, ge=1, le=1_000_000,
                              description="evaluate every N epochs (and the last), 1 … 1e6")
    batch_size: Count = Field(1000, description="samples per evaluation forward pass")
    train_samples: Count | None = Field(
        None, description="evaluate the train metrics on the first N train samples")
    n_reps: int = Field(1, ge=1, le=10_000, description="repeated reads of the chip per "
                        "evaluation, 1 … 1e4; metrics are their mean")


class TimelineSpec(_Data):
    """Device time: training steps spend it; inference is evaluated at times after the last
    programming; optional periodic re-programming and drift compensation."""

    step_s: float = Field(0.1, ge=0, le=1e6,
                          description="device seconds per training step, in [0, 1e6]")
    after_programming_s: list[Seconds] = Field(
        default_factory=list, max_length=10_000,
        description="evaluate inference at these seconds after the last programming, each in "
        "[0, 1e9]")
    refresh_every_s: float | None = Field(
        None, ge=1e-6, le=1e9, description="after training, re-program the weights every T "
        f"seconds, in [1e-6, 1e9]; at most {MAX_REFRESHES:,} refreshes in all")
    drift_compensation: bool | None = Field(
        None, description="override every profile's drift.compensation")

    @field_validator("after_programming_s")
    @classmethod
    def _sorted(cls, times: list[float]) -> list[float]:
        if len(set(times)) != len(times):
            raise ValueError("times must be distinct")
        return sorted(times)

    @model_validator(mode="after")
    def _bounded_events(self) -> TimelineSpec:
        if self.refresh_every_s is not None and self.after_programming_s:
            n = max(self.after_programming_s) / self.refresh_every_s
            if n > MAX_REFRESHES:
                raise ValueError(
                    f"refresh_every_s = {self.refresh_every_s:g} with after_programming_s up "
                    f"to {max(self.after_programming_s):g} s means {n:.3g} refreshes; at most "
                    f"{MAX_REFRESHES:,} (raise refresh_every_s)")
        return self


class Scenario(_Data):
    """A grid of training runs: profiles (× sweep values) × rules × baselines × seeds."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
                      description="a safe folder name: letters, digits, _ . - (not starting "
                      "with a dot)")
    description: str = ""
    dataset: DatasetSpec
    model: ModelSpec = MLPSpec()
    profiles: list[str] = Field(min_length=1, max_length=1000,
                                description="shipped names or YAML paths (relative to the "
                                "scenario file)")
    sweep: SweepSpec | None = None
    rules: list[RuleSpec] = Field(min_length=1, max_length=1000)
    baselines: list[Literal["clean", "noisy", "auto"]] | None = Field(
        None, min_length=1, description="crossed with every perturbation rule")
    skip_impossible: bool = Field(
        False, description="drop clean-baseline cells on hardware profiles instead of failing")
    seeds: list[Seed] = Field(min_length=1, max_length=10_000, description="each 0 … 2³²−1")
    epochs: int = Field(ge=1, le=1_000_000, description="1 … 1e6")
    batch_size: Count = Field(description="1 … 1e8")
    drop_last: bool = Field(False, description="drop the last, smaller batch of an epoch")
    lr: Annotated[float, Field(gt=0, le=MAX_LR)] | dict[
        str, Annotated[float, Field(gt=0, le=MAX_LR)]] | LRFrom | None = Field(
        None, description=f"η for every rule (each in (0, {MAX_LR:g}]), per rule name (or "
        "label), or {from: RESULTS} (the η an earlier run's search chose)")
    lr_search: LRSearchSpec | None = None
    alignment: AlignmentSpec | None = None
    evaluation: EvaluationSpec = EvaluationSpec()
    timeline: TimelineSpec = TimelineSpec()
    output: str | None = Field(None, description="results folder (default results/<name>)")
    device: Literal["cpu", "cuda"] = "cpu"
    numerics: Literal["exact", "fast"] = Field(
        "exact", description="crossbar arithmetic: exact (float32, the same on every host) or "
        "fast (int8/bf16 paths measured faster here; recorded in the manifest)")

    _folder: Path = PrivateAttr(default_factory=Path.cwd)

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset_shorthand(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @field_validator("model", mode="before")
    @classmethod
    def _model_kind(cls, v: Any) -> Any:
        return {"kind": "mlp", **v} if isinstance(v, dict) and "kind" not in v else v

    @field_validator("rules", mode="before")
    @classmethod
    def _rule_shorthand(cls, v: Any) -> Any:
        return [{"name": r} if isinstance(r, str) else r for r in v] if isinstance(v, list) else v

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct")
        return seeds

    @field_validator("lr")
    @classmethod
    def _positive_lr(cls, lr: float | dict[str, float] | LRFrom | None) -> Any:
        if isinstance(lr, LRFrom):
            return lr
        values = [lr] if isinstance(lr, float) else list((lr or {}).values())
        if any(not v > 0 for v in values):
            raise ValueError("every η must be > 0")
        return lr

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if (self.lr is None) == (self.lr_search is None):
            raise ValueError("lr, lr_search: give exactly one of lr (η per rule) and "
                             "lr_search")
        if self.lr_search is not None and self.dataset.validation == 0:
            raise ValueError("lr_search picks η on the validation split: set "
                             "dataset.validation (e.g. 0.1)")
        if isinstance(self.lr, dict):
            names = {r.name for r in self.rules}
            unknown = sorted(set(self.lr) - names - set(self.rule_keys()))
            if unknown:
                raise ValueError(f"lr names {', '.join(unknown)}, which is not a rule here "
                                 f"(rules: {', '.join(sorted(names))})")
            for spec, label in zip(self.rules, self.rule_keys(), strict=True):
                if spec.name not in self.lr and label not in self.lr:
                    raise ValueError(f"lr has no η for rule {spec.name}")
        if self.baselines is not None:
            for i, spec in enumerate(self.rules):
                if "baseline" in spec.model_fields_set:
                    raise ValueError(f"rules.{i}.baseline, baselines: rule {i} sets "
                                     "baseline and the scenario sets "
                                     "baselines; set it in one place")
        if len({r.model_dump_json() for r in self.rules}) != len(self.rules):
            raise ValueError("rules: a rule is listed twice; list each rule once")
        return self

    def rule_keys(self) -> list[str]:
        """A key per rule entry: its name, plus the options it sets (baseline aside) when
        another entry has the same name (``danp sigma=0.0``). Keys of ``lr``; plot labels."""
        keys = []
        for spec in self.rules:
            key = spec.name
            if sum(r.name == spec.name for r in self.rules) > 1:
                opts = sorted(spec.model_fields_set - {"name", "baseline"})
                key += "".join(f" {k}={getattr(spec, k)!r}" for k in opts)
            keys.append(key)
        return keys

    def lr_for(self, index: int) -> float | None:
        """η of rule entry ``index`` (None when the η search picks it)."""
        if self.lr is None or isinstance(self.lr, LRFrom):
            return None
        if isinstance(self.lr, float):
            return self.lr
        label = self.rule_keys()[index]
        return self.lr.get(label, self.lr.get(self.rules[index].name))

    @property
    def folder(self) -> Path:
        """The scenario file's folder: relative paths in it are resolved against it."""
        return self._folder

    def resolve(self, path: str) -> Path:
        """``path`` relative to the scenario file's folder (absolute paths unchanged)."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self._folder / p


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file; ``ScenarioError`` with one line per problem."""
    path = Path(path)
    data = read_yaml(path, ScenarioError)
    scenario = validate(Scenario, data, str(path), ScenarioError)
    scenario._folder = path.resolve().parent
    return scenario


def scenario_from_dict(data: dict[str, Any], folder: str | Path | None = None,
                       source: str = "<scenario>") -> Scenario:
    """Validate a scenario given as a mapping (relative paths against ``folder``)."""
    scenario = validate(Scenario, data, source, ScenarioError)
    if folder is not None:
        scenario._folder = Path(folder).resolve()
    return scenario
