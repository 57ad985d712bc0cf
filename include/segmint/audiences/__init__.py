"""Audiences for marketing: declarative definitions compiled to SQL, snapshots and changes,
holdouts and readouts, ad-platform exports with consent enforcement, erasure, PII masking.

Submodules import DuckDB and friends; this package imports them only when a function runs.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segmint.config import Settings
    from segmint.stages import StageResult

__all__ = ["build_audiences"]


def build_audiences(settings: Settings, as_of: date) -> StageResult:
    """The pipeline stage: see :mod:`segmint.audiences.build`."""
    from segmint.audiences.build import build_audiences as _build

    return _build(settings, as_of)
