"""``make``: build any rule from its name and options."""

from __future__ import annotations

from typing import Any

from analogsim.config.rulespec import RuleSpec
from analogsim.rules.base import LearningRule
from analogsim.rules.bp import BP
from analogsim.rules.decorrelation import Decorrelated
from analogsim.rules.perturbation import ANP, INP, NP

_BASE: dict[str, type[LearningRule]] = {"bp": BP, "np": NP, "inp": INP, "anp": ANP}


def make(spec: str | RuleSpec, **options: Any) -> LearningRule:
    """``make("danp", sigma=1e-3, baseline="noisy", alpha=1e-3)`` or ``make(RuleSpec(...))``."""
    if isinstance(spec, str):
        spec = RuleSpec(name=spec, **options)  # type: ignore[arg-type]
    elif options:
        spec = spec.model_copy(update=options)
        spec = RuleSpec.model_validate(spec.model_dump())
    rule = _BASE[spec.base](spec)
    return Decorrelated(rule) if spec.decorrelated else rule
