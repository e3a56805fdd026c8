"""``RuleSpec``: a learning rule named with its options, as scenarios write it in YAML."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from analogsim.config.strict import Seed, StrictData

RuleName = Literal["bp", "np", "inp", "anp", "dbp", "dnp", "dinp", "danp"]
RULE_NAMES: tuple[str, ...] = ("bp", "np", "inp", "anp", "dbp", "dnp", "dinp", "danp")


class RuleSpec(StrictData):
    """A learning rule and its options.

    name: one of bp, np, inp, anp and the decorrelated dbp, dnp, dinp, danp.
    sigma: std of the injected perturbation ε (σ² = 1e-6 in the paper); 0 lets ANP/DANP learn
        from the device's own noise alone.
    baseline: "clean" (first pass unperturbed; needs the ideal profile), "noisy" (two
        independently noisy passes, the only option on hardware), or "auto" (clean on the
        ideal profile, noisy on hardware).
    alpha: decorrelation learning rate (decorrelated rules only).
    n_units: N in ANP: "hidden_output" (Σ_{l≥1} N_l) or "all" (the paper's Σ_{l≥0}, input too).
    loss: per-sample loss: "sse" Σ_k (t_k − y_k)² (the paper's) or "mse" (mean over outputs).
    reduction: how per-sample updates combine over the batch: "mean" or "sum".
    seed: seeds the rule's own generator (the perturbations it injects), 0 … 2³²−1.
    backward: BP/DBP on a chip: how the backward reaches each layer's inputs — "noisy_read" (a
        transposed noisy read of the same devices, the default and what a chip can do),
        "shadow" (the optimizer's digital weights) or "mean" (the devices' mean weights, an
        oracle no chip exposes: optimistic). Only for bp and dbp.
    check_every: steps between host syncs of the divergence guard.
    max_abs_weight: a weight beyond this magnitude counts as divergence.
    """

    name: RuleName
    sigma: float = Field(1e-3, ge=0, le=1e3, description="in [0, 1e3]")
    baseline: Literal["clean", "noisy", "auto"] = "auto"
    alpha: float = Field(1e-3, ge=0, le=1e3, description="in [0, 1e3]")
    n_units: Literal["hidden_output", "all"] = "hidden_output"
    loss: Literal["sse", "mse"] = "sse"
    reduction: Literal["mean", "sum"] = "mean"
    seed: Seed = 0
    backward: Literal["noisy_read", "shadow", "mean"] | None = None
    check_every: int = Field(50, ge=1, le=1_000_000, description="1 … 1e6")
    max_abs_weight: float = Field(1e4, gt=0, le=1e30, description="in (0, 1e30]")

    @model_validator(mode="after")
    def _sigma_for_np(self) -> RuleSpec:
        if self.name in ("np", "dnp", "inp", "dinp") and self.sigma == 0:
            raise ValueError(f"{self.name} divides by the injected noise: sigma must be > 0")
        if self.backward is not None and self.base != "bp":
            raise ValueError(f"backward is a choice of bp and dbp, not of {self.name}")
        return self

    @property
    def decorrelated(self) -> bool:
        return self.name.startswith("d")

    @property
    def base(self) -> str:
        """The rule without decorrelation (dnp → np)."""
        return self.name[1:] if self.decorrelated else self.name

    @property
    def label(self) -> str:
        """Short label for tables and plots, e.g. ``DANP (noisy)``."""
        return f"{self.name.upper()} ({self.baseline})" if self.base != "bp" else self.name.upper()
