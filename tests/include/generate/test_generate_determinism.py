"""Same arguments, same bytes; another seed, other data."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest

from segmint.generate import generate


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _run(root: Path, fmt: str, seed: int) -> dict[str, str]:
    generate(
        root / "landing", customers=300, days=10, end_date=date(2026, 3, 31), seed=seed,
        fmt=fmt, dirt_rate=0.01,
    )  # fmt: skip
    return _digest(root)


@pytest.mark.parametrize("fmt", ["jsonl.gz", "parquet"])
def test_same_seed_same_bytes(tmp_path: Path, fmt: str) -> None:
    first = _run(tmp_path / "a", fmt, seed=5)
    second = _run(tmp_path / "b", fmt, seed=5)
    assert len(first) > 20
    assert first == second


def test_different_seed_different_data(tmp_path: Path) -> None:
    first = _run(tmp_path / "a", "jsonl.gz", seed=5)
    other = _run(tmp_path / "b", "jsonl.gz", seed=6)
    changed = [k for k in first if first[k] != other.get(k)]
    assert "ground_truth/customers.parquet" in changed
    assert sum(k.startswith("landing/events") for k in changed) >= 10
