from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from ml.io import TableWrite, new_run_id, read_frame, write_outputs
from segmint.warehouse import connect


def _rows(as_of: date, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "as_of_date": as_of,
            "score": [i / n for i in range(n)],
        }
    )


def test_write_replaces_rows_of_the_same_date(tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    d1, d2 = date(2026, 1, 1), date(2026, 1, 2)
    for as_of, n in ((d1, 3), (d2, 4), (d1, 2)):
        run_id = new_run_id("toy", as_of)
        write_outputs(
            wh,
            [TableWrite("ml.toy_scores", _rows(as_of, n), "as_of_date = ?", [as_of])],
            model_run={
                "run_id": run_id,
                "model_name": "toy",
                "as_of_date": as_of,
                "training_rows": n,
                "params": {"k": 3},
                "status": "published",
            },
        )
    counts = read_frame(
        wh, "SELECT as_of_date, count(*) n FROM ml.toy_scores GROUP BY 1 ORDER BY 1"
    )
    assert counts["n"].tolist() == [2, 4]
    runs = read_frame(wh, "SELECT params FROM ml.model_runs")
    assert len(runs) == 3
    assert runs["params"].iloc[0] == '{"k": 3}'


def test_failed_write_leaves_nothing_half_done(tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    as_of = date(2026, 1, 1)
    write_outputs(wh, [TableWrite("ml.a", _rows(as_of, 3), "as_of_date = ?", [as_of])])
    bad = pd.DataFrame({"unknown_column": [1]})
    with pytest.raises(Exception, match="unknown_column"):
        write_outputs(
            wh,
            [
                TableWrite("ml.a", _rows(as_of, 5), "as_of_date = ?", [as_of]),
                TableWrite("ml.a", bad),
            ],
        )
    con = connect(wh, read_only=True)
    assert con.execute("SELECT count(*) FROM ml.a").fetchone()[0] == 3
    con.close()
