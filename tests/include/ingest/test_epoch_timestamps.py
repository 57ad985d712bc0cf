"""``[ingest] epoch_timestamp_unit``: Unix times in timestamp fields (JavaScript's
``Date.now()`` milliseconds, a database's seconds) load when the unit is configured; a value
in another unit lands outside 2000-2100 and is quarantined, not loaded with a wrong date."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from segmint.config import ConfigError, IngestSettings
from segmint.ingest import run_ingest
from segmint.ingest.contract import epoch_unit
from tests.include.ingest.conftest import D1, event, write_jsonl, write_lines

TEN_AM_S = 1780308000  # 2026-06-01T10:00:00Z


def _with_unit(settings, unit: str):
    return dataclasses.replace(settings, ingest=IngestSettings(epoch_timestamp_unit=unit))


def _events():
    return [
        event("e1", event_ts=TEN_AM_S * 1000),  # a JSON number
        event("e2", event_ts=str(TEN_AM_S * 1000 + 250)),  # text, with milliseconds
        event("e3", event_ts=f"{TEN_AM_S}123.5"),  # a fraction of a millisecond
        event("e4", event_ts="2026-06-01T09:00:00+02:00"),  # ISO still reads
        event("e5", event_ts=TEN_AM_S),  # seconds read as ms: January 1970, quarantined
        event("e6", event_ts=TEN_AM_S * 1_000_000),  # microseconds read as ms: year 58000
        event("e7", event_ts=-5),  # not a plain non-negative number
        event("e8", event_ts=(TEN_AM_S + 2 * 86400) * 1000),  # two days ahead: in the future
    ]


def test_unix_milliseconds_load_when_configured(settings, landing, query):
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", _events())
    run_ingest(_with_unit(settings, "ms"), D1)
    loaded = dict(query("select event_id, event_ts from raw.events"))
    assert loaded == {
        "e1": datetime(2026, 6, 1, 10),
        "e2": datetime(2026, 6, 1, 10, 0, 0, 250_000),
        "e3": datetime(2026, 6, 1, 10, 0, 0, 123_500),
        "e4": datetime(2026, 6, 1, 7),
    }
    reasons = dict(
        query(
            "select line_number, list_aggregate(reasons, 'string_agg', '; ') "
            "from ops.quarantine order by 1"
        )
    )
    assert set(reasons) == {5, 6, 7, 8}
    for line in (5, 6, 7):
        assert "event_ts is not an ISO-8601 timestamp or a Unix time in ms" in reasons[line]
    assert "in the future" in reasons[8]


def test_without_the_setting_unix_times_are_quarantined(settings, landing, query):
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("e1", event_ts=TEN_AM_S)])
    run_ingest(settings, D1)
    assert query("select count(*) from raw.events") == [(0,)]
    [(reasons,)] = query("select reasons from ops.quarantine")
    assert reasons == [f"event_ts is not an ISO-8601 timestamp (got {TEN_AM_S})"]


def test_crm_updated_at_in_seconds(settings, landing, query):
    write_lines(
        landing / "crm/dt=2026-06-01/c.csv",
        ["customer_id,updated_at,email", f"c1,{TEN_AM_S},one@example.com", "c2,17803080,"],
    )
    run_ingest(_with_unit(settings, "s"), D1)
    assert query("select customer_id, updated_at from raw.customers") == [
        ("c1", datetime(2026, 6, 1, 10))
    ]
    assert query("select line_number from ops.quarantine") == [(3,)]


def test_the_unit_is_checked():
    assert epoch_unit("") is None and epoch_unit("us") == "us"
    with pytest.raises(ConfigError, match="'millis' is not one of s, ms, us"):
        epoch_unit("millis")


def test_after_fixing_the_setting_a_reload_recovers_the_quarantined_rows(
    settings, landing, query, capsys, monkeypatch
):
    """Files are tracked by checksum, so a rerun after setting the unit skipped the file as
    already loaded and the gate failed the same way every night. `segmint ingest
    --reload-since` reads it again, as a changed file: its rows are replaced, not doubled."""
    from segmint.cli import main

    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", _events())
    write_jsonl(landing / "events/dt=2026-05-31/b.jsonl", [event("o1", event_ts=TEN_AM_S)])
    run_ingest(settings, D1)
    assert query("select event_id from raw.events") == [("e4",)]  # the ISO one
    fixed = _with_unit(settings, "ms")
    run_ingest(fixed, D1)  # a plain rerun: nothing new to read
    assert query("select event_id from raw.events") == [("e4",)]

    toml = settings.warehouse.parent / "segmint.toml"
    toml.write_text('[ingest]\nepoch_timestamp_unit = "ms"\n')
    args = ["ingest", "--warehouse", str(settings.warehouse), "--landing", str(landing)]
    args += ["--output", str(settings.output), "--as-of", str(D1), "--reload-since", str(D1)]
    monkeypatch.setenv("SEGMINT_CONFIG", str(toml))
    assert main(args) == 0
    assert "1 already loaded" in capsys.readouterr().out  # the 05-31 file was left as is
    assert [r[0] for r in query("select event_id from raw.events order by 1")] == [
        "e1",
        "e2",
        "e3",
        "e4",
    ]
    assert [r[0] for r in query("select line_number from ops.quarantine order by 1")] == [
        1,  # b.jsonl's seconds, not reloaded
        5,
        6,
        7,
        8,
    ]
    manifest = query(
        "select path, rows_read, rows_loaded, rows_quarantined from ops.load_manifest order by path"
    )
    assert [m[1:] for m in manifest] == [(1, 0, 1), (8, 4, 4)]
