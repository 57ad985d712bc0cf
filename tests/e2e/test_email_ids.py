"""A shop that keys its customers by e-mail address: the analysts' copy holds no address.

Some shops have no customer number: a newsletter platform's list, or a tracker whose
`userId` is the address. Every table analysts read then held the addresses that the masked
`email` column hides, as customer ids (docs/tables.md, "analyst").
"""

from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.db import columns_holding, text_columns
from tests.e2e.airflow_support import AS_OF, segmint_script, small_night

pytestmark = pytest.mark.slow

# The generator's customer ids (C1234567; its dirt writes some in lower case or padded).
CUSTOMER_ID = re.compile(r"\b([Cc][0-9]{7})\b")
DOMAIN = "@mail.example"


def _key_customers_by_address(landing: Path) -> None:
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        if path.suffix == ".gz":
            text = gzip.decompress(path.read_bytes()).decode()
            path.write_bytes(gzip.compress(CUSTOMER_ID.sub(rf"\1{DOMAIN}", text).encode()))
        elif path.suffix in (".jsonl", ".csv"):
            path.write_text(CUSTOMER_ID.sub(rf"\1{DOMAIN}", path.read_text()))


def _holding(con, text: str) -> list[str]:
    return columns_holding(con, text_columns(con), [text])


def test_customer_ids_that_are_addresses_are_hashed_for_analysts(tmp_path: Path) -> None:
    env = small_night(tmp_path, customers=200, days=21)
    landing = Path(env["SEGMINT_LANDING"])
    _key_customers_by_address(landing)
    proc = subprocess.run(
        [segmint_script(), "run", "--as-of", AS_OF.isoformat()],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    published = Path(env["SEGMINT_WAREHOUSE"]).parent / "published"

    with duckdb.connect(str(published / "segmint.duckdb"), read_only=True) as con:
        # the pipeline itself keys people by the address, as delivered
        keyed = con.execute(
            "select count(*), count(*) filter (where contains(customer_id, ?)) "
            "from marts.customers",
            [DOMAIN],
        ).fetchone()
        segmented = con.execute(
            "select count(*) from ml.customer_segments where contains(customer_id, ?)", [DOMAIN]
        ).fetchone()[0]
        views = _holding(con, DOMAIN)
        # the analysts' views: hashed, and the same hash in every view (they still join)
        hashed_join = con.execute(
            "select count(*), min(length(c.customer_id)), max(length(c.customer_id)) "
            "from analyst.customers as c join analyst.customer_features as f using (customer_id)"
        ).fetchone()
    assert keyed[0] > 100 and keyed[1] == keyed[0]
    assert segmented > 0
    assert views and all(v.split(".", 1)[0] != "analyst" for v in views), views
    assert hashed_join[0] > 100 and hashed_join[1:] == (64, 64)

    with duckdb.connect(str(published / "segmint_analyst.duckdb"), read_only=True) as con:
        leaks = _holding(con, DOMAIN)
        ids = con.execute(
            "select count(*), count(distinct length(customer_id)) from marts.customers"
        ).fetchone()
        joined = con.execute(
            "select count(*) from marts.customers as c "
            "join ml.customer_segments as s using (customer_id)"
        ).fetchone()[0]
    assert leaks == []
    assert ids == (keyed[0], 1)  # every id a 64-character hash
    assert joined == segmented
