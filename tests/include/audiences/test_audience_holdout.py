"""Holdouts: a stable hash of (audience, customer_id, salt), the same group every night."""

from __future__ import annotations

from datetime import date

from segmint.audiences import build_audiences
from segmint.audiences.holdout import holdout_bucket
from segmint.warehouse import connect

AS_OF = date(2026, 6, 30)
NEXT = date(2026, 7, 1)


def _groups(settings, as_of, audience="a") -> dict[str, str]:
    con = connect(settings.warehouse, read_only=True)
    rows = con.execute(
        'select customer_id, "group" from audiences.members where audience = ? and as_of_date = ?',
        [audience, as_of],
    ).fetchall()
    con.close()
    return dict(rows)


def _write(settings, where: str, salt: str = "s1", percent: int = 10) -> None:
    settings.audiences.mkdir(parents=True, exist_ok=True)
    (settings.audiences / "a.yml").write_text(
        f"name: a\nconsent: email\nwhere: {where}\nholdout: {{percent: {percent}, salt: {salt}}}\n"
    )


def test_holdout_share_and_stability_across_runs(big_settings):
    s = big_settings
    _write(s, "{feature: order_count, gte: 0}")
    build_audiences(s, AS_OF)
    first = _groups(s, AS_OF)
    share = sum(g == "holdout" for g in first.values()) / len(first)
    assert len(first) == 4000 and 0.08 < share < 0.12
    # The summary counts the split the members table holds.
    con = connect(s.warehouse, read_only=True)
    summary = con.execute(
        "select members, target, holdout from audiences.summary where audience = 'a'"
    ).fetchone()
    con.close()
    holdout = sum(g == "holdout" for g in first.values())
    assert summary == (4000, 4000 - holdout, holdout)

    # Next night: a different population (two thirds of it) and the same salt.
    con = connect(s.warehouse)
    con.execute(
        "insert into marts.customer_features select * replace (date '2026-07-01' as as_of_date) "
        "from marts.customer_features"
    )
    con.close()
    _write(s, "{feature: order_count, gte: 2}")
    build_audiences(s, NEXT)
    second = _groups(s, NEXT)
    assert 0 < len(second) < len(first)
    assert all(first[c] == g for c, g in second.items())

    # A rerun gives the same split; Python and SQL agree on the bucket.
    build_audiences(s, NEXT)
    assert _groups(s, NEXT) == second
    for customer, group in list(second.items())[:50]:
        assert (holdout_bucket("a", customer, "s1") < 1000) == (group == "holdout")


def test_changing_the_salt_reshuffles(big_settings):
    s = big_settings
    _write(s, "{feature: order_count, gte: 0}", salt="s1", percent=50)
    build_audiences(s, AS_OF)
    before = _groups(s, AS_OF)
    _write(s, "{feature: order_count, gte: 0}", salt="s2", percent=50)
    build_audiences(s, AS_OF)
    after = _groups(s, AS_OF)
    moved = sum(before[c] != after[c] for c in before) / len(before)
    assert 0.4 < moved < 0.6  # independent halves: about half the customers move
