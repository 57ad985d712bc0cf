"""The benchmark harness's report: totals, the target's stages, the Markdown summary."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _harness():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _stage(part: str, name: str, wall: float, cpu: float | None = None) -> dict:
    return {
        "name": f"{part}:{name}",
        "wall_s": wall,
        "cpu_s": wall if cpu is None else cpu,
        "peak_rss_mib": 100.0 + wall,
        "rows_in": 10,
        "rows_out": 10,
        "rows_per_s": 10 / wall,
        "exit_code": 0,
    }


def test_the_report_totals_every_stage_and_the_stages_the_target_names():
    run = _harness()
    walls = {"ingest": 50.0, "validate": 1.0, "transform": 40.0, "segment": 3.0,
             "score": 15.0, "recommend": 8.0, "audiences": 1.0, "report": 2.0,
             "publish": 2.0}  # fmt: skip
    report = {
        "scale": "10M",
        "parse_floor": {"wall_s": 5.0, "rows_in": 10},
        "generate": "reused",
        # ingest keeps two cores busy, the others one
        "night": [_stage("night", n, w, 2 * w if n == "ingest" else w) for n, w in walls.items()],
        "increment": [_stage("increment", n, w / 5) for n, w in walls.items()],
        "quality": {},
    }
    run.add_totals(report, 5.0)

    assert report["night_total_s"] == 122.0
    # recommend and publish came with later issues; the target names the other stages
    assert set(run.TARGET_STAGES) == set(walls) - {"recommend", "publish"}
    assert report["night_target_stages_s"] == 112.0
    assert report["increment_target_stages_s"] == 22.4
    assert report["night_peak_mib"] == 150.0
    assert report["night"][0]["x_parse_floor"] == 10.0
    assert report["night"][0]["cores_busy"] == 2.0
    assert report["night"][1]["cores_busy"] == 1.0
    assert report["night_cores_busy"] == round(172.0 / 122.0, 2)
    assert report["increment_cores_busy"] == 1.0

    text = run.markdown({"machine": run.machine(), "scales": [report]})
    cores = run.machine()["cores"]
    assert f"### night: 122.0 s, peak 150.0 MiB, 1.41 of {cores} cores busy" in text
    assert "| ingest | 50.0 | 100.0 | 2.0 | 10 |" in text
    assert "night < 120 s (got 122.0 for every stage; 112.0 for ingest, validate" in text
    assert "increment < 30 s (got 24.4 for every stage; 22.4 for the stages" in text
