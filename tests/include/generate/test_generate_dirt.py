"""Injected dirt is where dirt.json says, and nothing else is dirty."""

from __future__ import annotations

from datetime import date


def _line(con, file: str, line: int) -> str:
    return con.execute(
        "select text from lines where file = ? and line = ?", [file, line]
    ).fetchone()[0]


def test_counts_match_the_recorded_items(jsonl_zone) -> None:
    dirt = jsonl_zone.dirt
    for key, count in dirt["counts"].items():
        assert len(dirt[key]) == count > 0, key
    assert dirt["counts"] == jsonl_zone.summary.dirt


def test_late_events_land_in_a_later_partition(jsonl_zone, con, lines) -> None:
    lines(jsonl_zone.landing)
    for item in jsonl_zone.dirt["late_events"]:
        text = _line(con, item["file"], item["line"])
        assert item["event_id"] in text
        dt = date.fromisoformat(item["file"].split("dt=")[1][:10])
        lag = (dt - date.fromisoformat(item["event_date"])).days
        assert lag == item["lag_days"] and 1 <= lag <= 3


def test_duplicates_repeat_the_same_event_later(jsonl_zone, con, lines) -> None:
    lines(jsonl_zone.landing)
    ids = con.execute(
        "select text::json ->> 'event_id' as id, count(*) as n from lines "
        "where json_valid(text) and id is not null group by all having n > 1"
    ).fetchall()
    recorded = {d["event_id"] for d in jsonl_zone.dirt["duplicate_events"]}
    assert {i for i, _ in ids} == recorded
    for item in jsonl_zone.dirt["duplicate_events"]:
        first = _line(con, item["original"]["file"], item["original"]["line"])
        again = _line(con, item["duplicate"]["file"], item["duplicate"]["line"])
        assert first == again and item["event_id"] in first
        assert (item["duplicate"]["file"], item["duplicate"]["line"]) > (
            item["original"]["file"],
            item["original"]["line"],
        )
    assert any(
        d["original"]["file"] != d["duplicate"]["file"] for d in jsonl_zone.dirt["duplicate_events"]
    )


def test_crm_duplicates_differ_only_in_email_case_and_spaces(jsonl_zone) -> None:
    import csv

    for item in jsonl_zone.dirt["crm_duplicates"]:
        with (jsonl_zone.landing / item["file"]).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        a, b = rows[item["line"] - 1], rows[item["duplicate_line"] - 1]
        assert a["customer_id"] == b["customer_id"] == item["customer_id"]
        assert a["email"] != b["email"]
        assert a["email"].strip().lower() == b["email"].strip().lower()
        assert {k: v for k, v in a.items() if k != "email"} == {
            k: v for k, v in b.items() if k != "email"
        }


def test_zero_dirt_rate_writes_clean_data(clean_zone, con) -> None:
    assert all(v == 0 for v in clean_zone.dirt["counts"].values())
    root = clean_zone.landing.as_posix()
    total, unique = con.execute(
        f"""
        select count(*), count(distinct event_id) from read_json(
            '{root}/events/*/*.jsonl.gz', format = 'newline_delimited',
            columns = {{event_id: 'VARCHAR'}})
        """
    ).fetchone()
    assert total == unique == clean_zone.summary.events_written
