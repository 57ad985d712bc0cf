"""A realistic synthetic landing zone with known ground truth (``segmint generate``).

See :func:`segmint.generate.generator.generate` and ``docs/data-contract.md``.
"""

from segmint.generate.generator import FORMATS, GenerateSummary, generate

__all__ = ["FORMATS", "GenerateSummary", "generate"]
