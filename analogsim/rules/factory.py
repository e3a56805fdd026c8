"""``make``: build any rule from its name and options."""

from __future__ import annotations

from typing import Any

import pydantic

from analogsim.config.rulespec import RuleSpec
from analogsim.config.yaml_io import format_validation_error
from analogsim.rules.base import LearningRule
from analogsim.rules.bp import BP
from analogsim.rules.decorrelation import Decorrelated
from analogsim.rules.perturbation import ANP, INP, NP

_BASE: dict[str, type[LearningRule]] = {"bp": BP, "np": NP, "inp": INP, "anp": ANP}


def make(spec: str | RuleSpec, **options: Any) -> LearningRule:
    """``make("danp", sigma=1e-3, baseline="noisy", alpha=1e-3)`` or ``make(RuleSpec(...))``.

    A bad name or option raises ``ValueError`` with one line per problem (and a "did you mean"
    for a misspelt name or option).
    """
    data = ({"name": spec, **options} if isinstance(spec, str)
            else {**spec.model_dump(), **options})
    try:
        spec = RuleSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValueError(format_validation_error("rule", exc, data, RuleSpec)) from None
    rule = _BASE[spec.base](spec)
    return Decorrelated(rule) if spec.decorrelated else rule
