"""The one place where user-written data is made strict: ``StrictData`` and number types.

Every model of a profile or a scenario derives from ``StrictData``: unknown keys are refused,
models are frozen, numbers must be numbers (``true``, ``"25.0"`` and ``"8"`` are refused where a
number is expected; an integer field refuses ``1.0``), every float must be finite (``.inf``,
``.nan``, ``1e400``) and every string is at most ``MAX_STR`` characters. A field added later
inherits all of this; its physical range is given with ``Field(ge=…, le=…)`` or one of the
annotated types below.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

#: Longest string accepted anywhere (descriptions and citations included).
MAX_STR = 10_000

#: Largest seed: torch generators take 64 bits, numpy's legacy seeding 32; 32 bits serve both.
MAX_SEED = 2**32 - 1


class StrictData(BaseModel):
    """Base of every user-written model: strict types, finite floats, no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False,
                              str_max_length=MAX_STR)


#: A fraction in [0, 1].
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
#: A conductance in µS, in [10⁻³, 10⁴] (1 nS … 10 mS; real devices: ~0.1 … 100 µS).
Conductance_uS = Annotated[float, Field(ge=1e-3, le=1e4)]
#: A conductance σ or offset in µS, in [0, 10⁴].
ConductanceSpread_uS = Annotated[float, Field(ge=0.0, le=1e4)]
#: A converter resolution in bits, 1 … 24.
Bits = Annotated[int, Field(ge=1, le=24)]
#: A device time in seconds, in [0, 10⁹] (10⁹ s ≈ 32 years).
Seconds = Annotated[float, Field(ge=0.0, le=1e9)]
#: A seed, 0 … 2³²−1.
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
#: A count of samples, steps, epochs or repeats, 1 … 10⁸.
Count = Annotated[int, Field(ge=1, le=100_000_000)]
