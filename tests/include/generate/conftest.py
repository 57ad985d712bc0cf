"""Small generated landing zones shared by the generator tests (generated once per session)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from segmint.generate import generate

END = date(2026, 6, 30)
CUSTOMERS = 500
DAYS = 14


@dataclass
class Generated:
    landing: Path
    truth: Path
    fmt: str
    summary: object

    @property
    def dirt(self) -> dict:
        return json.loads((self.truth / "dirt.json").read_text())


def _make(root: Path, fmt: str, dirt_rate: float = 0.01, seed: int = 3) -> Generated:
    landing = root / "landing"
    summary = generate(
        landing,
        customers=CUSTOMERS,
        days=DAYS,
        end_date=END,
        seed=seed,
        fmt=fmt,
        dirt_rate=dirt_rate,
        truth_dir=None,
    )
    return Generated(landing, root / "ground_truth", fmt, summary)


@pytest.fixture(scope="session")
def jsonl_zone(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return _make(tmp_path_factory.mktemp("gen_jsonl"), "jsonl")


@pytest.fixture(scope="session")
def parquet_zone(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return _make(tmp_path_factory.mktemp("gen_parquet"), "parquet")


@pytest.fixture(scope="session")
def clean_zone(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return _make(tmp_path_factory.mktemp("gen_clean"), "jsonl.gz", dirt_rate=0.0)


@pytest.fixture()
def con():
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


@pytest.fixture()
def lines(con):
    """``lines(landing)`` creates the view ``lines(file, line, text)`` over every physical line
    of the plain JSONL event files (file relative to the landing root, 1-based line)."""

    def make(landing: Path) -> None:
        _json_lines(con, landing)

    return make


def _json_lines(con, landing: Path, pattern: str = "*.jsonl") -> None:
    con.execute(
        f"""
        create or replace view lines as
        with f as (
            select
                replace(filename, '{landing.as_posix()}/', '') as file,
                string_split(rtrim(content, chr(10)), chr(10)) as parts
            from read_text('{landing.as_posix()}/events/*/{pattern}')
        )
        select file, unnest(generate_series(1, len(parts))) as line, unnest(parts) as text
        from f
        """
    )
