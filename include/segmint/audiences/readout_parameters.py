"""The readout's statistical parameters: default, range and an example of each, in one
table and a module without heavy imports.

`segmint audience readout` checks its options against it when it parses them (with its
usage, exit code 2: the CLI must not import DuckDB to start), and
:func:`segmint.audiences.readout.readout` checks the values any caller passes. The ranges
were written twice, in cli.py and in the readout, in two wordings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Parameter:
    """A number strictly between ``low`` and ``high``."""

    option: str
    default: float
    low: float
    high: float
    example: str
    meaning: str

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range ("must be above 0 and below 1 (0.05 for 5%)"), or
        None. A NaN is out of every range."""
        if self.low < value < self.high:
            return None
        below = "" if self.high == math.inf else f" and below {self.high:g}"
        return f"must be above {self.low:g}{below} ({self.example})"

    def help(self) -> str:
        """The option's help: what it is, its range and its default."""
        below = "" if self.high == math.inf else f" and below {self.high:g}"
        return f"{self.meaning}, above {self.low:g}{below}, default {self.default:g}"


PARAMETERS = {
    "alpha": Parameter("--alpha", 0.05, 0, 1, "0.05 for 5%", "significance level"),
    "power": Parameter("--power", 0.80, 0, 1, "0.8 for 80%", "power for the sample size check"),
    "mde": Parameter("--mde", 0.10, 0, math.inf, "0.1 for 10%", "relative uplift to detect"),
}
ALPHA = PARAMETERS["alpha"].default
POWER = PARAMETERS["power"].default
MDE = PARAMETERS["mde"].default


def parameter_problems(**values: float) -> list[str]:
    """Each value out of its range, as "--alpha 5 must be above 0 and below 1 (0.05 for
    5%)"."""
    return [
        f"{PARAMETERS[name].option} {value:g} {problem}"
        for name, value in values.items()
        if (problem := PARAMETERS[name].problem(value))
    ]
