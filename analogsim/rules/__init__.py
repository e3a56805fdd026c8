"""Learning rules: BP, NP, INP, ANP and their decorrelated forms DBP, DNP, DINP, DANP.

Every rule fills ``.grad`` (``rule.fill_grads(model, inputs, targets)``); any torch optimizer
applies it. Build one with ``make("danp", sigma=1e-3, baseline="noisy")``.
"""

from analogsim.config.rulespec import RULE_NAMES, RuleSpec
from analogsim.rules.base import DivergenceGuard, LearningRule, per_sample_loss
from analogsim.rules.bp import BP
from analogsim.rules.decorrelation import Decorrelated
from analogsim.rules.factory import make
from analogsim.rules.perturbation import ANP, INP, NP

__all__ = ["ANP", "BP", "INP", "NP", "RULE_NAMES", "Decorrelated", "DivergenceGuard",
           "LearningRule", "RuleSpec", "make", "per_sample_loss"]
