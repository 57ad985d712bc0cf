"""The ``segment`` stage: read features, fit, save the model, write every table at once."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import date, datetime
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from ml.io import TableWrite, new_run_id, read_frame, write_outputs
from ml.registry import ModelMetadata, git_revision, library_versions, save_model
from ml.segmentation.columns import FEATURES, PROFILE_EXTRA, PROFILE_FEATURES, numeric_columns
from ml.segmentation.runs import PreviousRun, StoredSegments
from segmint.config import Settings
from segmint.stages import SegmintError, StageResult, import_in_background

if TYPE_CHECKING:
    from ml.segmentation.model import SegmentationOutput

# The model module imports scikit-learn and scipy (a second or more): the stage starts that
# import first and reads the warehouse meanwhile (DuckDB releases the GIL).
MODEL_MODULE = "ml.segmentation.model"

MODEL_NAME = "segmentation"

log = logging.getLogger(__name__)
SOURCE = "marts.customer_features"

DDL = {
    "ml.customer_segments": """
        create table if not exists ml.customer_segments (
            customer_id varchar not null,
            as_of_date date not null,
            segment_id integer not null,
            segment_name varchar not null,
            distance double not null,
            is_outlier boolean not null,
            run_id varchar not null
        )""",
    "ml.segment_profiles": f"""
        create table if not exists ml.segment_profiles (
            run_id varchar not null,
            as_of_date date not null,
            segment_id integer not null,
            segment_name varchar not null,
            description varchar,
            status varchar not null,
            is_pinned boolean not null,
            customers bigint not null,
            outliers bigint not null,
            share double not null,
            centroid_shift double,
            centroid json,
            {", ".join(f"mean_{c} double, median_{c} double" for c in PROFILE_FEATURES)},
            email_opt_in_share double,
            ads_opt_in_share double,
            top_categories json
        )""",
    "ml.segment_transitions": """
        create table if not exists ml.segment_transitions (
            run_id varchar not null,
            as_of_date date not null,
            previous_as_of_date date,
            from_segment_id integer,
            from_segment_name varchar,
            to_segment_id integer,
            to_segment_name varchar,
            customers bigint not null
        )""",
    "ml.k_selection": """
        create table if not exists ml.k_selection (
            run_id varchar not null,
            as_of_date date not null,
            k integer not null,
            inertia double not null,
            silhouette double,
            is_chosen boolean not null,
            search_rows bigint not null,
            silhouette_rows bigint not null
        )""",
    "ml.segment_drift": """
        create table if not exists ml.segment_drift (
            run_id varchar not null,
            as_of_date date not null,
            previous_as_of_date date,
            kind varchar not null,
            segment_id integer,
            feature varchar,
            value double not null,
            is_warning boolean not null
        )""",
}


def _exists(warehouse: Path, table: str) -> bool:
    schema, name = table.split(".")
    found = read_frame(
        warehouse,
        "select count(*) as n from information_schema.tables "
        "where table_schema = ? and table_name = ?",
        [schema, name],
    )
    return bool(found["n"].iloc[0])


def load_features(warehouse: Path, as_of: date) -> pd.DataFrame:
    """The as-of date's rows of marts.customer_features, sorted by customer_id."""
    if not Path(warehouse).exists():
        raise SegmintError(f"warehouse {warehouse} does not exist; run `segmint transform` first")
    if not _exists(warehouse, SOURCE):
        raise SegmintError(f"{SOURCE} not found in {warehouse}; run `segmint transform` first")
    numeric = ", ".join(f"cast({c} as double) as {c}" for c in numeric_columns())
    extra = ", ".join(PROFILE_EXTRA)
    try:
        frame = read_frame(
            warehouse,
            f"select customer_id, {numeric}, {extra} from {SOURCE} "
            "where as_of_date = ? order by customer_id",
            [as_of],
        )
    except duckdb.Error as exc:
        raise SegmintError(f"{SOURCE} in {warehouse} does not match its contract: {exc}") from exc
    if frame.empty:
        if (
            _exists(warehouse, "marts.customers")
            and read_frame(warehouse, "select count(*) as n from marts.customers")["n"].iloc[0] == 0
        ):
            raw = [t for t in ("raw.events", "raw.customers") if _exists(warehouse, t)]
            loaded = sum(
                read_frame(warehouse, f"select count(*) as n from {t}")["n"].iloc[0] for t in raw
            )
            if raw and loaded == 0:
                raise SegmintError(
                    f"nothing is loaded up to the as-of date {as_of}: ingest loads the landing "
                    "partitions (dt=YYYY-MM-DD) dated on or before it, and there were none "
                    "with a record; check --as-of against the landing zone's dates"
                )
            raise SegmintError(
                f"no known customers as of {as_of}: no loaded event carries a customer_id "
                "(or is linked to one by a login) and no CRM record has landed, so there is "
                "nothing to segment; check that the landing files map the customer id to "
                "the contract's customer_id field"
            )
        dates = read_frame(
            warehouse, f"select distinct as_of_date from {SOURCE} order by 1 desc limit 5"
        )["as_of_date"].tolist()
        raise SegmintError(
            f"{SOURCE} has no rows for as_of_date {as_of} (latest dates: "
            f"{', '.join(str(d)[:10] for d in dates) or 'none'}); run `segmint transform` first"
        )
    duplicated = frame["customer_id"].duplicated()
    if duplicated.any():
        example = frame.loc[duplicated, "customer_id"].iloc[0]
        raise SegmintError(
            f"{SOURCE} has {int(duplicated.sum())} duplicate customer_id(s) for {as_of} "
            f"(e.g. {example!r}); the mart must have one row per customer"
        )
    if frame["customer_id"].isna().any():
        raise SegmintError(f"{SOURCE} has rows with a null customer_id for {as_of}")
    for col in ("email_opt_in", "ads_opt_in"):
        frame[col] = frame[col].fillna(False).astype(bool)
    return frame


def _active_segments(warehouse: Path, as_of: date) -> pd.DataFrame:
    return read_frame(
        warehouse,
        "select segment_id, segment_name, description, cast(centroid as varchar) as centroid "
        "from ml.segment_profiles where as_of_date = ? and status <> 'retired' "
        "order by segment_id",
        [as_of],
    )


def load_stored(
    warehouse: Path, as_of: date
) -> tuple[StoredSegments | None, StoredSegments | None]:
    """The segments an earlier run of ``as_of`` stored (a rerun), and those of the first
    night after ``as_of`` that has segments (a backfill): where ids are taken from besides
    the previous run."""
    if not _exists(warehouse, "ml.segment_profiles"):
        return None, None
    same = _active_segments(warehouse, as_of)
    same_night = StoredSegments(as_of, same) if not same.empty else None
    after = read_frame(
        warehouse,
        "select min(as_of_date) as d from ml.segment_profiles "
        "where as_of_date > ? and status <> 'retired'",
        [as_of],
    )["d"]
    later = None
    if not after.isna().all():
        later_date = pd.Timestamp(after.iloc[0]).date()
        later = StoredSegments(later_date, _active_segments(warehouse, later_date))
    return same_night, later


def load_previous(warehouse: Path, as_of: date) -> tuple[PreviousRun | None, int]:
    """The last segmentation run before ``as_of``, and the next unused segment id."""
    if not _exists(warehouse, "ml.segment_profiles"):
        return None, 1
    used = read_frame(
        warehouse,
        "select coalesce(max(segment_id), 0) as m from ml.segment_profiles where as_of_date <> ?",
        [as_of],
    )
    next_id = int(used["m"].iloc[0]) + 1
    last = read_frame(
        warehouse,
        "select as_of_date, any_value(run_id) as run_id from ml.segment_profiles "
        "where as_of_date < ? group by as_of_date order by as_of_date desc limit 1",
        [as_of],
    )
    if last.empty:
        return None, next_id
    prev_date = pd.Timestamp(last["as_of_date"].iloc[0]).date()
    run_id = str(last["run_id"].iloc[0])
    segments = _active_segments(warehouse, prev_date)
    assignments = read_frame(
        warehouse,
        "select customer_id, segment_id, segment_name from ml.customer_segments "
        "where as_of_date = ?",
        [prev_date],
    )
    reference: dict[str, Any] = {}
    k_searched: date | None = None
    crowd_id: int | None = None
    crowd_unrecorded = False
    trained_vars: dict[str, str] | None = None
    if _exists(warehouse, "ml.model_runs"):
        runs = read_frame(
            warehouse,
            "select cast(metrics as varchar) as metrics, cast(params as varchar) as params "
            "from ml.model_runs where run_id = ?",
            [run_id],
        )
        if not runs.empty and runs["metrics"].iloc[0]:
            stored = json.loads(runs["metrics"].iloc[0])
            reference = stored.get("feature_reference", {})
            if stored.get("k_searched_as_of"):
                k_searched = date.fromisoformat(stored["k_searched_as_of"])
            crowd_id = stored.get("crowd_segment_id")
            crowd_unrecorded = "crowd_segment_id" not in stored and str(
                stored.get("k_reason", "")
            ).startswith("a crowd:")
        if not runs.empty and runs["params"].iloc[0]:
            recorded = json.loads(runs["params"].iloc[0]).get("feature_vars")
            trained_vars = recorded if isinstance(recorded, dict) else None
    previous = PreviousRun(
        as_of_date=prev_date,
        run_id=run_id,
        segments=segments,
        assignments=assignments,
        reference=reference,
        k_searched_as_of=k_searched,
        feature_vars=trained_vars,
        crowd_segment_id=int(crowd_id) if crowd_id is not None else None,
        crowd_unrecorded=crowd_unrecorded,
    )
    return previous, next_id


def nights_after(warehouse: Path, as_of: date) -> list[date]:
    """Later nights whose ml.segment_transitions were counted from ``as_of``'s segments."""
    if not _exists(warehouse, "ml.segment_transitions"):
        return []
    found = read_frame(
        warehouse,
        "select distinct as_of_date from ml.segment_transitions "
        "where previous_as_of_date = ? and as_of_date > ? order by as_of_date",
        [as_of, as_of],
    )
    return [pd.Timestamp(d).date() for d in found["as_of_date"]]


# The transitions of a later night recounted from the customer_segments of both nights (the
# earlier one as just rewritten, in the same transaction); $1 the later night, $2 the
# earlier one.
RECOUNT_TRANSITIONS = """
    insert into ml.segment_transitions (
        run_id, as_of_date, previous_as_of_date, from_segment_id, from_segment_name,
        to_segment_id, to_segment_name, customers
    )
    with later as (
        select customer_id, segment_id, segment_name, run_id
        from ml.customer_segments where as_of_date = $1
    ),
    earlier as (
        select customer_id, segment_id, segment_name
        from ml.customer_segments where as_of_date = $2
    ),
    run as (select any_value(run_id) as run_id from later)
    select
        run.run_id, cast($1 as date), cast($2 as date),
        earlier.segment_id, earlier.segment_name, later.segment_id, later.segment_name,
        count(*)
    from earlier full outer join later on earlier.customer_id = later.customer_id
    cross join run
    group by all
"""


def _with_keys(frame: pd.DataFrame, run_id: str, as_of: date, **extra: Any) -> pd.DataFrame:
    keys = {"run_id": run_id, "as_of_date": pd.Timestamp(as_of), **extra}
    return frame.assign(**keys)


def build_writes(
    out: SegmentationOutput,
    run_id: str,
    as_of: date,
    previous: PreviousRun | None,
    recount: list[date] | None = None,
) -> list[TableWrite]:
    """Every table of the run, replacing the rows of ``as_of``; and the transitions of the
    ``recount`` nights, recounted from this night's new segments."""
    prev_date = pd.Timestamp(previous.as_of_date) if previous is not None else pd.NaT
    frames = {
        "ml.customer_segments": _with_keys(out.assignments, run_id, as_of),
        "ml.segment_profiles": _with_keys(out.profiles, run_id, as_of),
        "ml.segment_transitions": _with_keys(
            out.transitions, run_id, as_of, previous_as_of_date=prev_date
        ),
        "ml.k_selection": _with_keys(
            out.k_selection,
            run_id,
            as_of,
            search_rows=out.metrics["k_search_rows"],
            silhouette_rows=out.metrics["silhouette_rows"],
        ),
        "ml.segment_drift": _with_keys(out.drift, run_id, as_of, previous_as_of_date=prev_date),
    }
    writes = [
        TableWrite(table, frame, "as_of_date = ?", [as_of], ddl=DDL[table])
        for table, frame in frames.items()
    ]
    # Later nights counted their transitions from this night's segments: recount them from
    # tonight's, so they never name a segment id this night no longer has.
    no_rows = frames["ml.segment_transitions"].iloc[:0]
    for later in recount or ():
        writes.append(
            TableWrite(
                "ml.segment_transitions",
                no_rows,
                "as_of_date = ? and previous_as_of_date = ?",
                [later, as_of],
                then_sql=RECOUNT_TRANSITIONS,
                then_params=[later, as_of],
            )
        )
    return writes


def _vars_changed(previous: PreviousRun | None, now: dict[str, str] | None) -> str | None:
    """The dbt vars the features are built with whose value differs from the previous
    run's, in words ("session_inactivity_minutes 30 -> 10"); None when none did or either
    side is unknown."""
    if previous is None or previous.feature_vars is None or now is None:
        return None
    then = previous.feature_vars
    changed = [f"{k} {then.get(k, 'unset')} -> {v}" for k, v in now.items() if then.get(k) != v]
    return ", ".join(changed) or None


def run_segmentation(settings: Settings, as_of: date) -> StageResult:
    started = perf_counter()
    import_in_background(MODEL_MODULE)
    cfg = settings.segmentation
    t = perf_counter()
    frame = load_features(settings.warehouse, as_of)
    previous, next_id = load_previous(settings.warehouse, as_of)
    if previous is not None and previous.crowd_unrecorded:
        log.info(
            "previous run %s kept a crowd as one segment without recording which (before "
            "2026-12-07, everyone scaled together): k is searched again tonight and the "
            "others are scaled by their own spread",
            previous.run_id,
        )
    same_night, later = load_stored(settings.warehouse, as_of)
    recount = nights_after(settings.warehouse, as_of)
    read_s = perf_counter() - t

    from ml.propensity.cadence import feature_vars
    from ml.segmentation.model import fit_segments

    current_vars = feature_vars(settings)
    out = fit_segments(
        frame,
        cfg,
        as_of,
        previous=previous,
        next_id=next_id,
        same_night=same_night,
        later=later,
        vars_changed=_vars_changed(previous, current_vars),
    )

    t = perf_counter()
    run_id = new_run_id(MODEL_NAME, as_of)
    params = {**dataclasses.asdict(cfg), "features": list(FEATURES), "feature_vars": current_vars}
    metrics = {k: v for k, v in out.metrics.items()}
    meta = ModelMetadata(
        run_id=run_id,
        model_name=MODEL_NAME,
        as_of_date=as_of.isoformat(),
        features=list(FEATURES),
        params=params,
        metrics={k: v for k, v in metrics.items() if k != "feature_reference"},
        training_window={"as_of_date": as_of.isoformat(), "source": SOURCE},
    )
    artifact = save_model(settings.artifacts_dir, out.pipeline, meta)
    active = out.profiles[out.profiles["status"] != "retired"]
    shares = ", ".join(
        f"{sid} {name} {share:.0%}"
        for sid, name, share in zip(
            active["segment_id"], active["segment_name"], active["share"], strict=True
        )
    )
    summary = (
        f"{len(frame)} customers in {metrics['k']} segment{'s' if metrics['k'] != 1 else ''} "
        f"({len(metrics['segments_kept'])} kept, {len(metrics['segments_new'])} new, "
        f"{len(metrics['segments_retired'])} retired), {metrics['outliers']} outliers: {shares}"
    )
    write_outputs(
        settings.warehouse,
        build_writes(out, run_id, as_of, previous, recount),
        model_run={
            "run_id": run_id,
            "model_name": MODEL_NAME,
            "as_of_date": as_of,
            "training_rows": len(frame),
            "params": params,
            "metrics": metrics,
            "library_versions": library_versions(),
            "git_revision": git_revision(),
            "artifact_path": str(artifact),
            "status": "published",
            "message": summary,
            "created_at": datetime.utcnow(),
        },
    )
    write_s = perf_counter() - t
    timings = {"read_s": read_s, **out.timings, "save_write_s": write_s}
    timings["total_s"] = perf_counter() - started
    return StageResult(
        stage="segment",
        rows_in=len(frame),
        rows_out=len(out.assignments),
        summary=summary,
        details={
            "run_id": run_id,
            "artifact": str(artifact),
            "k": metrics["k"],
            "k_reason": metrics["k_reason"],
            "silhouette": metrics["silhouette"],
            "segments": dict(zip(metrics["segment_ids"], metrics["segment_names"], strict=True)),
            "retired": metrics["segments_retired"],
            "max_feature_psi": metrics["max_feature_psi"],
            "timings": {k: round(v, 3) for k, v in timings.items()},
        },
        warnings=out.warnings,
    )
