"""One typed configuration for segmint, read at run time.

Precedence, lowest to highest:

1. defaults in the dataclasses below;
2. a TOML file: ``$SEGMINT_CONFIG`` if set, else ``./segmint.toml`` if present;
3. ``SEGMINT_*`` environment variables (``SEGMINT_WAREHOUSE``, ``SEGMINT_LANDING``,
   ``SEGMINT_OUTPUT``, ``SEGMINT_AUDIENCES``);
4. command-line flags, applied by the CLI through :func:`Settings.with_overrides`.

Credentials never live in the file: DuckDB needs none, and a cloud profile would read them
from the environment.
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ENV_PREFIX = "SEGMINT_"
DEFAULT_CONFIG_FILE = "segmint.toml"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


def _check_at_least(section: str, settings: Any, low: int, *names: str) -> None:
    """Refuse a count, a number of days or of threads below ``low`` (None: not set)."""
    for name in names:
        value = getattr(settings, name)
        if value is not None and value < low:
            raise ConfigError(f"[{section}] {name} must be at least {low}, got {value}")


def _check_range(
    section: str,
    settings: Any,
    name: str,
    low: float,
    high: float | None = None,
    *,
    above: bool = False,
    what: str = "",
) -> None:
    """Refuse a number outside ``[low, high]`` (``(low, high]`` when ``above``): a share
    above 1, a quantile of 5, a half-life of 0 days went through and failed late, in a
    library's words (or silently did something else)."""
    value = getattr(settings, name)
    if value is None:
        return
    if (value <= low if above else value < low) or (high is not None and value > high):
        bound = f"above {low}" if above else f"at least {low}"
        if high is not None:
            bound += f" and at most {high}"
        raise ConfigError(
            f"[{section}] {name} must be {bound}{f' ({what})' if what else ''}, got {value}"
        )


# A DuckDB memory limit: a size with its unit (2GB, 1.5GB, 512MiB) or a share of the machine's
# memory (50%), as DuckDB's ``SET memory_limit`` reads it; empty: DuckDB's default (80%).
_MEMORY_LIMIT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(%|[kmgt]i?b|[kmgt]|b|bytes)\s*", re.IGNORECASE)
# DuckDB's units: KB, MB, GB, TB (and k, m, g, t) are powers of 1000, KiB... powers of 1024.
_UNIT_BYTES = {
    **{u: 1000**i for i, u in enumerate(("b", "kb", "mb", "gb", "tb"))},
    **{u: 1000**i for i, u in enumerate(("", "k", "m", "g", "t")) if u},
    **{u: 1024**i for i, u in enumerate(("bytes", "kib", "mib", "gib", "tib"))},
}
# DuckDB's guidance is 1-4 GB of memory a thread (docs: guides/performance/environment): a
# thread count left to segmint gets at least this much of the memory limit each.
_BYTES_PER_THREAD = 10**9


def memory_limit_bytes(limit: str) -> int:
    """The bytes of a checked memory limit (``2GB``, ``512MiB``, ``50%`` of the machine's
    memory; empty: DuckDB's default, 80% of it)."""
    match = _MEMORY_LIMIT.fullmatch(limit or "80%")
    if match is None:
        raise ConfigError(f"not a memory limit: {limit!r}")
    number, unit = float(match[1]), match[2].lower()
    if unit == "%":
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * number / 100)
    return int(number * _UNIT_BYTES[unit])


def duckdb_thread_count(threads: int, memory_limit: str) -> int:
    """DuckDB's threads for ``duckdb_threads`` (0: every core the process may use, at most one
    per GB of ``memory_limit``, so each thread keeps the memory DuckDB advises)."""
    if threads:
        return threads
    return max(1, min(usable_cores(), memory_limit_bytes(memory_limit) // _BYTES_PER_THREAD))


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a container's or ``taskset``'s
    limit, not the machine's count), or ``os.cpu_count()`` where there is none (macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _check_duckdb_resources(section: str, settings: Any) -> None:
    """Refuse a negative thread count or a memory limit DuckDB cannot read, naming the key."""
    _check_at_least(section, settings, 0, "duckdb_threads")
    limit = settings.duckdb_memory_limit
    if not isinstance(limit, str) or (limit and not _MEMORY_LIMIT.fullmatch(limit)):
        raise ConfigError(
            f"[{section}] duckdb_memory_limit: a size with its unit (2GB, 512MiB) or a share "
            f"of the machine's memory (50%); empty for DuckDB's default (80%); got {limit!r}"
        )


# How long a *scheduled* night waits for its day's events when
# [ingest] wait_for_as_of_events_hours is unset. A scheduled run starts at 00:00 UTC, when
# the day has just ended and most exporters have not delivered it yet: without a wait it
# published the night without its own day's events, a warning in the validate task's log
# the only sign. Backfills and manual runs process a day that is past or that a person
# asked for now, and do not wait.
SCHEDULED_RUN_WAIT_HOURS = 6.0


@dataclass(frozen=True)
class IngestSettings:
    # A partition whose quarantined share exceeds this stops the run before publishing...
    max_quarantine_share: float = 0.05
    # ... when at least this many of its rows were quarantined. 1 (the default): any share
    # above the threshold stops it. A shop whose CRM sends small deltas (1 bad record of 5 is
    # 20%) may raise it, so one record does not stop the night; the record is quarantined
    # and reported either way.
    min_quarantined_rows: int = 1
    # Share of events with neither customer_id nor anonymous_id that fails the batch gate.
    max_no_identity_share: float = 0.05
    # Events stamped later than the end of the as-of day plus this many hours are quarantined.
    future_tolerance_hours: float = 6.0
    # Batch gate on file size: fewer rows than this in a non-empty partition is suspicious.
    min_rows_per_partition: int = 1
    max_rows_per_partition: int = 50_000_000
    # A landing file with the size and modification time recorded in ops.load_manifest is
    # taken as unchanged without reading it; true reads and checksums every file every run
    # (for a landing zone whose tools rewrite files keeping both).
    rehash_unchanged_files: bool = False
    # true: a night whose as-of date has no events file fails the validate stage (a late or
    # missing delivery stops the night before stale segments, scores and audiences go out);
    # false: the stage passes with a warning (backfills over days without data, demos).
    require_as_of_events: bool = False
    # Airflow only: hours after the end of the as-of day (UTC) that the nightly DAG's ingest
    # task waits for the day's events partition to land, checking every few minutes without
    # holding a worker or the warehouse; 0 does not wait. When the time is up, the night
    # fails if require_as_of_events is true, else it runs without the day's events.
    # Unset: SCHEDULED_RUN_WAIT_HOURS for a scheduled run, 0 for the others (see
    # :meth:`as_of_events_wait_hours`).
    wait_for_as_of_events_hours: float | None = None
    # A file whose presence marks an events partition as complete ("_SUCCESS", written by
    # Spark, Hadoop and many export jobs last); empty: any data file will do. Only the wait
    # above looks at it.
    partition_ready_marker: str = ""
    # Other names for contract fields, per source: {"events": {"customer_id": ["userId"],
    # "revenue": ["properties.revenue"]}}. A name with dots is a path into nested JSON
    # objects; CSV and Parquet column names match case-insensitively. The first name present
    # in a record wins, the contract's own name first unless the list names it elsewhere
    # (Amplitude: event_id = ["uuid", "event_id"]; docs/data-contract.md, "Other trackers").
    field_aliases: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # Texts that mean "no value" in a field, per source (trimmed, case-insensitive):
    # {"events": {"session_id": ["-1"], "customer_id": ["0", "guest"]}}: Amplitude writes
    # session_id -1 for events outside a session, WooCommerce customer_id 0 for guests (read
    # as an id, every guest's orders were one customer's).
    null_values: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # Event names of other trackers mapped to segmint's event types, case-insensitively:
    # {"Order Completed": "purchase", "page": "page_view"}.
    event_type_aliases: dict[str, str] = field(default_factory=dict)
    # Unix times in timestamp fields (event_ts, updated_at): "s", "ms" or "us" reads a plain
    # number as seconds/milliseconds/microseconds since 1970 (UTC); empty quarantines them
    # (the units cannot be told apart safely from the values).
    epoch_timestamp_unit: str = ""
    # Dates written as a spreadsheet's locale writes them, in timestamp and date fields:
    # "dmy" reads 30.06.2026 and 30/06/2026 (Europe), "mdy" reads 6/30/2026 and
    # "6/30/2026, 2:05 PM" (the US: Excel, Salesforce); empty quarantines them (06/07/2026
    # is June or July: the order cannot be told from the values).
    date_order: str = ""
    # Text files are UTF-8. A line that is not, and holds no UTF-8 character, is decoded with
    # this encoding (a Python codec name): Excel's CSV on Windows and Latin-1 databases write
    # windows-1252, which loses nothing (every byte has its character). A line with UTF-8
    # characters and invalid bytes is damaged UTF-8: only the damage becomes U+FFFD. Empty:
    # every invalid sequence becomes U+FFFD ("cp932" for Japanese Windows tools, ...).
    legacy_encoding: str = "windows-1252"
    # Event names that are not segmint's (after event_type_aliases, case-insensitively) whose
    # records are dropped and counted (rows_ignored) instead of quarantined: a tracker's
    # identify calls and custom events. "*" ignores every event type segmint does not know.
    ignored_event_types: list[str] = field(default_factory=list)
    # Words read as true / false in the consent flags besides true, yes, 1, ... and false, no,
    # 0, ... (case-insensitive, trimmed): a marketing platform's statuses, such as
    # true_values = ["subscribed"], false_values = ["unsubscribed", "pending", "cleaned"].
    # Any other word is no consent, with a warning naming the field.
    true_values: list[str] = field(default_factory=list)
    false_values: list[str] = field(default_factory=list)
    # The time zone (IANA name: "Europe/Berlin") of timestamps written without an offset,
    # per source, as many CRM and shop exports write local time ("2026-06-01 10:00:00");
    # empty: UTC (Amplitude's export writes naive UTC while the same shop's CRM may not).
    # A timestamp with an offset, Z or UTC, and a Unix time, is UTC whatever this says.
    # The source's partition days (dt=) are then local days too: a record may be stamped up
    # to the end of its partition's local day plus future_tolerance_hours.
    events_time_zone: str = ""
    crm_time_zone: str = ""
    # CRM exports without a modification time (Shopify's customer export has none): true
    # lets a CRM file lack updated_at, and a record without one takes the start of its
    # partition day (dt=) instead of being quarantined, so the latest delivery wins (in
    # one partition: the later file, then line). A value that is there but unreadable is
    # still quarantined.
    crm_updated_at_from_partition: bool = False
    # Event exports without an event id (public datasets: REES46, RetailRocket, GA4's
    # BigQuery export): true lets an events file lack the column, and a record without a
    # value takes the MD5 of its text as its id, so a record delivered again (the same text)
    # is a duplicate, and so are two identical records of one export.
    event_id_from_record: bool = False
    # Batch-level warning (never a quarantine, never a gate failure): a purchase whose
    # revenue exceeds extreme_revenue_multiple x the extreme_revenue_quantile of the
    # batch's order values in the same currency (one order of 1e9 among orders of 50) is
    # named, file, line and value, in the ingest stage's warnings and ops.validation_runs
    # (rule revenue_not_extreme). A high quantile rather than the maximum or the mean, so a
    # few absurd orders cannot raise their own bar; a currency with fewer than
    # extreme_revenue_min_orders purchases in the batch is not judged. 0 turns it off.
    extreme_revenue_multiple: float = 100.0
    extreme_revenue_quantile: float = 0.9
    extreme_revenue_min_orders: int = 20
    # DuckDB while loading: its threads (0: every core this process may use, at most one per
    # GB of the memory limit) and the memory limit of its buffer manager, beyond which a
    # batch spills to <warehouse>.tmp instead of growing (docs/operations.md, "Sizing"). 2GB
    # keeps a 10M-event night under 2.3 GiB of resident memory; a larger machine may raise
    # it (and so the threads).
    duckdb_threads: int = 0
    duckdb_memory_limit: str = "2GB"

    @property
    def duckdb_thread_count(self) -> int:
        return duckdb_thread_count(self.duckdb_threads, self.duckdb_memory_limit)

    def as_of_events_wait_hours(self, run_type: str | None) -> float:
        """Hours the DAG's first task waits for the as-of day's events, for a DAG run of
        ``run_type`` (Airflow's ``scheduled``, ``backfill``, ``manual``...): the setting,
        else :data:`SCHEDULED_RUN_WAIT_HOURS` for a scheduled run and 0 for the others."""
        if self.wait_for_as_of_events_hours is not None:
            return self.wait_for_as_of_events_hours
        return SCHEDULED_RUN_WAIT_HOURS if run_type == "scheduled" else 0.0

    def __post_init__(self) -> None:
        if not 0 < self.extreme_revenue_quantile < 1:
            raise ConfigError(
                "[ingest] extreme_revenue_quantile is a quantile strictly between 0 and 1 "
                f"(0.9 = the 90th percentile), got {self.extreme_revenue_quantile}"
            )
        _check_at_least("ingest", self, 0, "extreme_revenue_multiple")
        _check_duckdb_resources("ingest", self)
        _check_at_least("ingest", self, 1, "extreme_revenue_min_orders")
        for name in ("max_quarantine_share", "max_no_identity_share"):
            _check_range("ingest", self, name, 0, 1, what="a share of the rows: 0.05 = 5%")
        # Negative: every event of the as-of day's last hours would be "in the future".
        _check_range("ingest", self, "future_tolerance_hours", 0, what="hours")
        _check_at_least("ingest", self, 0, "min_rows_per_partition")
        _check_at_least("ingest", self, 1, "min_quarantined_rows")
        if self.wait_for_as_of_events_hours is not None and not (
            0 <= self.wait_for_as_of_events_hours <= 24 * 7
        ):
            raise ConfigError(
                "[ingest] wait_for_as_of_events_hours must be between 0 and 168 (a week), "
                f"got {self.wait_for_as_of_events_hours}"
            )
        if self.legacy_encoding:
            try:
                codec = codecs.lookup(self.legacy_encoding)
            except LookupError:
                raise ConfigError(
                    f"[ingest] legacy_encoding: {self.legacy_encoding!r} is not an encoding "
                    "Python knows (windows-1252, latin-1, cp932, ...; empty for none)"
                ) from None
            # Lines are split on the byte of a newline: the encoding must write ASCII as
            # ASCII (UTF-16 does not; a file with its byte-order mark is read as such anyway).
            if codec.encode("a,;\n")[0] != b"a,;\n":
                raise ConfigError(
                    f"[ingest] legacy_encoding: {self.legacy_encoding!r} does not write ASCII "
                    "as ASCII, so its lines cannot be told apart; an 8-bit encoding such as "
                    "windows-1252 or latin-1, or a multi-byte one such as cp932, is needed"
                )
        if "/" in self.partition_ready_marker or "\\" in self.partition_ready_marker:
            raise ConfigError(
                "[ingest] partition_ready_marker is a file name inside the partition folder, "
                f"not a path: {self.partition_ready_marker!r}"
            )
        if (
            self.true_values
            or self.false_values
            or self.events_time_zone
            or self.crm_time_zone
            or self.null_values
            or self.date_order
        ):
            from segmint.ingest.contract import SOURCES, ValueRules

            for source in SOURCES:
                ValueRules.of(self, source)
        if self.min_rows_per_partition > self.max_rows_per_partition:
            raise ConfigError(
                f"[ingest] min_rows_per_partition ({self.min_rows_per_partition}) is larger "
                f"than max_rows_per_partition ({self.max_rows_per_partition})"
            )


@dataclass(frozen=True)
class TransformSettings:
    dbt_project_dir: Path = Path("dbt_project")
    # Threads for dbt (models and tests run at once). Many statements of a model run on one
    # core (inserts, a window over one partition), so two dbt threads keep both cores busy:
    # at 10M events on the quiet 2-core machine, bench_transform's full build took 40.5 s
    # wall with 2 against 62.4 s with 1 (63.5 CPU-s either way), the increment 10.7 against
    # 13.9 s. On a machine whose cores other jobs hold, 1 can be faster (49 vs 78 s measured).
    threads: int = 2
    # The propensity cut-off snapshots (as-of minus 30, 60, 90 days) are built only on nights
    # a propensity model is due for retraining (its cadence, or no usable model); true builds
    # the missing ones every night.
    cutoff_snapshots_every_night: bool = False
    # The currency money is reported in (ISO 4217). Events paid in another currency are
    # converted at the rate of their day (`currency_rates` below); a currency without a
    # rate fails the transform (docs/models.md, "Money").
    reporting_currency: str = "USD"
    # CSV file of exchange rates (currency_code, valid_from, to_currency, rate: units of
    # to_currency for one unit of currency_code from that UTC day on), read at every
    # transform run; none = no rates (every amount must be in the reporting currency).
    currency_rates: Path | None = None
    # DuckDB inside dbt, as [ingest] duckdb_threads and duckdb_memory_limit: its threads (0:
    # every core this process may use, at most one per GB of the limit) and its memory limit
    # (3GB: a 10M-event full build's largest table spills a little rather than taking the
    # machine's memory).
    duckdb_threads: int = 0
    duckdb_memory_limit: str = "3GB"
    # After a full refresh the past snapshots of the feature history are rebuilt, newest
    # first, in batches (docs/models.md, "A full refresh keeps the feature history"); no
    # batch starts once this many minutes have passed (the first always runs): the rest wait
    # in ops.snapshot_dates_to_rebuild for the next nights, so a year of snapshots (~23 CPU
    # minutes at 200k customers) does not hold up one night's segments and audiences. 0: no
    # limit.
    history_rebuild_minutes: float = 30

    @property
    def duckdb_thread_count(self) -> int:
        return duckdb_thread_count(self.duckdb_threads, self.duckdb_memory_limit)

    def __post_init__(self) -> None:
        _check_at_least("transform", self, 1, "threads")
        _check_range("transform", self, "history_rebuild_minutes", 0, what="minutes")
        _check_duckdb_resources("transform", self)
        if self.currency_rates is not None and not isinstance(self.currency_rates, Path):
            object.__setattr__(self, "currency_rates", Path(self.currency_rates))
        code = str(self.reporting_currency).strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise ConfigError(
                f"[transform] reporting_currency: a three-letter ISO 4217 code such as USD "
                f"or EUR, got {self.reporting_currency!r}"
            )
        object.__setattr__(self, "reporting_currency", code)


@dataclass(frozen=True)
class SegmentationSettings:
    k_min: int = 2
    k_max: int = 10
    fixed_k: int | None = None
    # k is at most the customers over this (segments this small on average are noise to
    # marketing): a shop with fewer than twice as many customers gets one segment.
    min_segment_customers: int = 20
    # Silhouette sub-sample of the search sample (sd of the estimate ~0.004 at 200k customers,
    # a tenth of silhouette_tolerance; docs/segmentation.md).
    silhouette_sample: int = 5_000
    # Candidate k are fitted on this many rows (fixed sample); the final fit uses all rows.
    k_search_sample: int = 50_000
    # Prefer the elbow (or yesterday's k) when its silhouette is this close to the best.
    silhouette_tolerance: float = 0.05
    # KMeans restarts (k-means++ seeds) per candidate k.
    n_init: int = 4
    # OpenMP/BLAS threads while fitting; 0 = all cores. One thread was ~6x faster than two on
    # this busy 2-core machine (OpenMP workers spin when cores are shared) and is reproducible.
    threads: int = 1
    random_state: int = 42
    # A new centroid farther than this (scaled units) from every old one is a new segment.
    match_max_distance: float = 1.0
    outlier_quantile: float = 0.99
    drift_psi_warning: float = 0.2
    pinned_names: dict[str, str] = field(default_factory=dict)
    # Cadence: the search over k runs when the last search is this many days old (or there is
    # no previous run, or its k no longer fits the settings); other nights keep the previous
    # run's k and refit from its centroids. 0 = search every night.
    k_search_every_days: int = 7

    def __post_init__(self) -> None:
        _check_at_least("segmentation", self, 1, "k_min", "k_max", "fixed_k", "n_init")
        _check_at_least("segmentation", self, 1, "min_segment_customers", "k_search_sample")
        _check_at_least("segmentation", self, 2, "silhouette_sample")
        _check_at_least("segmentation", self, 0, "threads", "k_search_every_days")
        _check_range("segmentation", self, "outlier_quantile", 0.5, 1, what="a quantile")
        for name in ("silhouette_tolerance", "drift_psi_warning"):
            _check_range("segmentation", self, name, 0)
        _check_range("segmentation", self, "match_max_distance", 0, above=True)
        if self.k_min > self.k_max:
            raise ConfigError(
                f"[segmentation] k_min ({self.k_min}) is larger than k_max ({self.k_max})"
            )


@dataclass(frozen=True)
class PropensitySettings:
    horizon_days: int = 30
    churn_horizon_days: int | None = None  # defaults to horizon_days
    active_lookback_days: int = 90
    # Number of past cut-off dates used for training (each one horizon apart).
    training_cutoffs: int = 3
    # Days of activity needed up to a cut-off before its snapshot is used for training.
    min_history_days: int = 14
    # A model is trained only when each of its training, validation and holdout windows holds
    # at least this many positives and this many negatives (a young or tiny shop has fewer).
    min_class_examples: int = 10
    # A trained model is published only when its holdout ROC-AUC beats the best baseline
    # rule's beyond chance: DeLong's paired one-sided p-value below this (1 = any higher AUC).
    gate_p_value: float = 0.05
    # OpenMP threads for model fitting; 0 = all cores. One thread is the fastest on a busy
    # machine (HistGradientBoosting's threads spin when cores are shared).
    threads: int = 1
    # OpenMP threads for predictions (scoring, evaluation, calibration, importance); 0 = all
    # cores. Each row's trees are walked on its own, so the scores are the same with any
    # count: 200k rows took 0.55 s with 2 threads against 1.0 s with 1 on the 2-core machine.
    # With two cores or more the purchase and churn models also run at once, a thread each
    # (each predicting on its share): 1 runs them one after the other.
    predict_threads: int = 0
    random_state: int = 42
    drift_psi_warning: float = 0.2
    # Cadence: a night scores with the newest model published on an earlier night and
    # retrains only when that model is this many days old, when there is none (or the registry
    # refuses it), when the feature columns or training settings changed, or when tonight's
    # scores drift (PSI > drift_psi_warning). 0 = train every night.
    retrain_every_days: int = 7

    def __post_init__(self) -> None:
        _check_at_least(
            "propensity", self, 1, "horizon_days", "churn_horizon_days", "training_cutoffs"
        )
        _check_at_least("propensity", self, 0, "threads", "predict_threads", "retrain_every_days")
        _check_at_least("propensity", self, 1, "active_lookback_days", "min_class_examples")
        _check_at_least("propensity", self, 0, "min_history_days")
        _check_range("propensity", self, "drift_psi_warning", 0)
        _check_range("propensity", self, "gate_p_value", 0, 1, above=True)

    @property
    def churn_horizon(self) -> int:
        return self.churn_horizon_days or self.horizon_days

    def cutoff_dates(self, as_of: date, horizon_days: int | None = None) -> list[date]:
        """Past cut-offs whose label windows end on or before ``as_of``, newest first."""
        h = horizon_days or self.horizon_days
        return [as_of - timedelta(days=h * i) for i in range(1, self.training_cutoffs + 1)]


@dataclass(frozen=True)
class RecommendationSettings:
    # Recommendations per customer in ml.recommendations.
    top_n: int = 10
    # Products that may be recommended again after a purchase (consumables), by id or category.
    repeatable_product_ids: tuple[str, ...] = ()
    repeatable_categories: tuple[str, ...] = ()
    # Purchases of the last N days up to as_of are hidden from training and used to evaluate.
    holdout_days: int = 14
    # The model is published only when judged on at least this many customers (holdout buyers
    # of new products; half of them when several factor counts are compared).
    min_evaluated_customers: int = 50
    # Interaction strengths and recency half-life (days) of the weighted matrix.
    view_weight: float = 1.0
    cart_weight: float = 4.0
    purchase_weight: float = 8.0
    half_life_days: float = 30.0
    # Implicit ALS: confidence = 1 + alpha * weight; latent factors, L2 regularisation,
    # alternating sweeps and conjugate-gradient steps per sweep. Several factor counts: each
    # is fitted and the best on half of the holdout customers is used (one value: no choice).
    alpha: float = 2.0
    factors: tuple[int, ...] = (4, 8, 16)
    regularization: float = 1.0
    iterations: int = 12
    cg_steps: int = 3
    # The published model continues from the holdout-evaluated one with this many sweeps over
    # all interactions (0: publish the evaluated factors as they are).
    refit_iterations: int = 4
    random_state: int = 42
    # Customers with fewer distinct products interacted with get the cold-start chain
    # (favourite category, segment best sellers, overall best sellers).
    min_interactions: int = 3
    # Collaborative picks come from products at least two customers interacted with, at most
    # this many (those with the most customers): scoring costs warm customers x these
    # products, whatever a crawler or a long-tail catalogue adds. Fallbacks offer any product.
    max_candidate_products: int = 20_000
    # Only products some customer viewed, carted or bought in the last N days up to as_of
    # are recommended (0: no limit). The mart keeps every loaded day, and a product taken off
    # sale long ago (no view since) kept its factors and its decayed sales: it was still
    # recommended. Older products still train the factors.
    active_product_days: int = 90
    # BLAS threads while fitting and scoring; 0 = all cores.
    threads: int = 1
    # Cadence: nights rank with the newest model published on an earlier night (customers
    # with new interactions folded in against its product factors, the others' lists carried
    # over) and evaluate and fit again only when that model is this many days old, when
    # there is none (or the registry refuses it) or when the settings above changed.
    # 0 = train every night.
    retrain_every_days: int = 7

    def __post_init__(self) -> None:
        _check_at_least(
            "recommendations",
            self,
            1,
            "top_n",
            "min_interactions",
            "max_candidate_products",
            "min_evaluated_customers",
        )
        _check_at_least("recommendations", self, 1, "iterations", "cg_steps")
        _check_at_least(
            "recommendations",
            self,
            0,
            "threads",
            "active_product_days",  # 0: no limit
            "retrain_every_days",
            "refit_iterations",
            "holdout_days",  # 0: nothing held out, so nothing to evaluate (popularity)
        )
        _check_range("recommendations", self, "half_life_days", 0, above=True, what="days")
        _check_range("recommendations", self, "alpha", 0, above=True)
        _check_range("recommendations", self, "regularization", 0)
        for name in ("view_weight", "cart_weight", "purchase_weight"):
            _check_range("recommendations", self, name, 0)
        if not self.view_weight + self.cart_weight + self.purchase_weight:
            raise ConfigError(
                "[recommendations] view_weight, cart_weight and purchase_weight are all 0: "
                "no interaction would count"
            )
        # TOML gives lists; keep the frozen settings hashable.
        object.__setattr__(self, "repeatable_product_ids", tuple(self.repeatable_product_ids))
        object.__setattr__(self, "repeatable_categories", tuple(self.repeatable_categories))
        factors = (self.factors,) if isinstance(self.factors, int) else tuple(self.factors)
        if not factors or any(not isinstance(k, int) or k < 1 for k in factors):
            raise ConfigError(f"recommendations.factors: positive integers, got {self.factors!r}")
        object.__setattr__(self, "factors", factors)


@dataclass(frozen=True)
class ModelSettings:
    """The fitted model files under ``<warehouse folder>/artifacts/`` (``[models]``)."""

    # After a night publishes, the model files of older nights are deleted, except the
    # newest published model of each kind (and propensity horizon), which a later night may
    # still score with: the files of the newest `keep_nights` nights that fitted or used a
    # model stay (a rerun, or the drift check, reads the night before's). 0 = keep every
    # file. A segmentation model is saved every night, a recommendation model every
    # retrain: they piled up without end (docs/operations.md, "Model files").
    keep_nights: int = 30

    def __post_init__(self) -> None:
        if self.keep_nights == 1 or self.keep_nights < 0:
            raise ConfigError(
                "[models] keep_nights must be 0 (keep every model file) or at least 2 (a "
                f"rerun of the newest night reads the night before's models), got "
                f"{self.keep_nights}"
            )


@dataclass(frozen=True)
class OutputSettings:
    """The run outputs under ``output/<as_of>/`` (``[outputs]``)."""

    # After a night publishes, the Data Docs, GX validation results and audience export
    # files (clear-text e-mails and phones) of nights more than `keep_nights` days before
    # it are deleted; the reports stay. 0 = keep every file. They were kept forever: about
    # 4.8 MiB a night at 20,000 customers (docs/operations.md, "Run outputs").
    keep_nights: int = 30

    def __post_init__(self) -> None:
        if self.keep_nights < 0:
            raise ConfigError(
                "[outputs] keep_nights must be 0 (keep every file) or a number of nights, "
                f"got {self.keep_nights}"
            )


@dataclass(frozen=True)
class Settings:
    warehouse: Path = Path("warehouse/segmint.duckdb")
    landing: Path = Path("data/landing")
    # Run outputs (GX Data Docs, reports, exports) go under output/<as_of>/.
    output: Path = Path("output")
    audiences: Path = Path("audiences")
    ingest: IngestSettings = field(default_factory=IngestSettings)
    transform: TransformSettings = field(default_factory=TransformSettings)
    segmentation: SegmentationSettings = field(default_factory=SegmentationSettings)
    propensity: PropensitySettings = field(default_factory=PropensitySettings)
    recommendations: RecommendationSettings = field(default_factory=RecommendationSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    outputs: OutputSettings = field(default_factory=OutputSettings)

    # Paths derived from the warehouse location.
    @property
    def artifacts_dir(self) -> Path:
        """Fitted models and their metadata sidecars."""
        return self.warehouse.parent / "artifacts"

    @property
    def published_warehouse(self) -> Path:
        """The read-only full copy of the warehouse, personal data unmasked: for data
        engineers and data-protection work; replaced atomically after a night passes."""
        return self.warehouse.parent / "published" / self.warehouse.name

    @property
    def analyst_warehouse(self) -> Path:
        """The read-only copy analysts open: every table they may read, personal columns
        masked, nothing of ``raw``, ``staging``, ``intermediate``; published with the other."""
        full = self.published_warehouse
        return full.with_name(f"{full.stem}_analyst{full.suffix}")

    def run_output_dir(self, as_of: date) -> Path:
        return self.output / as_of.isoformat()

    def with_overrides(self, **overrides: Any) -> Settings:
        """Return a copy with top-level fields replaced; ``None`` values are ignored."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        for key in ("warehouse", "landing", "output", "audiences"):
            if key in clean:
                clean[key] = Path(clean[key])
        return dataclasses.replace(self, **clean)


def landing_problem(landing: Path) -> str | None:
    """Why ``landing`` cannot be the landing zone (it does not exist, it is a file), or
    None. A mistyped path must not look like a quiet night with nothing new."""
    if landing.is_dir():
        return None
    what = "is not a folder" if landing.exists() else "does not exist"
    return (
        f"the landing zone {landing} {what}: pass --landing, or set SEGMINT_LANDING or "
        "landing (top level) in the settings file, to the folder holding events/ and crm/"
    )


_SECTIONS = {
    "ingest": IngestSettings,
    "transform": TransformSettings,
    "segmentation": SegmentationSettings,
    "propensity": PropensitySettings,
    "recommendations": RecommendationSettings,
    "models": ModelSettings,
    "outputs": OutputSettings,
}
_PATH_KEYS = ("warehouse", "landing", "output", "audiences")


def _typed(value: Any, hint: Any, where: str, base: Path) -> Any:
    """``value`` read from the TOML file as the type its setting declares, or a
    :class:`ConfigError` naming the file, the key and what was expected. A relative path is
    relative to ``base``, the config file's folder (see :func:`load_settings`).

    Without this a value of the wrong type went through and failed late, mid-night, as an
    unexpected ``TypeError`` naming no setting (``fixed_k = "6"`` in the segment stage, a
    number for a path), or silently did something else (``30.7`` days read as 30, a string
    where a list is expected read as its letters)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):  # `int | None`: TOML has no null
        return _typed(value, next(a for a in args if a is not type(None)), where, base)
    if origin in (list, tuple):
        items = value if isinstance(value, list) else [value]  # "food" means ["food"]
        return origin(_typed(v, args[0], f"{where}[{i}]", base) for i, v in enumerate(items))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return {str(k): _typed(v, args[1], f"{where}.{k}", base) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint in (int, float):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if hint is int and value != int(value):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return hint(value)
    if hint in (str, Path):
        if not isinstance(value, str):
            what = "a path (a quoted string)" if hint is Path else "a quoted string"
            raise ConfigError(f"{where}: expected {what}, got {value!r}")
        return base / Path(value).expanduser() if hint is Path else value
    return value


def _build_section(cls: type, values: dict[str, Any], path: Path, section: str) -> Any:
    where = f"{path} [{section}]"
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    hints = typing.get_type_hints(cls)
    base = path.absolute().parent
    kwargs = {k: _typed(v, hints[k], f"{where}.{k}", base) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # a range or consistency check of the section
        raise ConfigError(f"{path}: {exc}") from None


def load_settings(
    config_file: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the settings: defaults, then the TOML file, then ``SEGMINT_*`` variables.

    A relative path in the file is relative to the file's folder, not to the working
    directory: an Airflow worker runs in whatever folder its scheduler was started in, so
    ``warehouse = "warehouse/segmint.duckdb"`` in ``$SEGMINT_CONFIG`` named a different,
    new warehouse there than for ``segmint run`` in the config's folder. (Relative paths in
    ``SEGMINT_*`` variables and flags stay relative to the working directory, as any
    command's arguments; ``segmint.airflow_env`` makes the variables absolute.)"""
    env = os.environ if environ is None else environ
    path = config_file or env.get(f"{ENV_PREFIX}CONFIG")
    data: dict[str, Any] = {}
    if path:
        origin = "--config" if config_file else f"{ENV_PREFIX}CONFIG"
        path = Path(path)
        if path.is_dir():  # it said "does not exist" of a folder that does
            raise ConfigError(
                f"config file {path} ({origin}) is a folder: give the TOML file, such as "
                f"{path / DEFAULT_CONFIG_FILE}"
            )
        if not path.is_file():
            raise ConfigError(f"config file {path} ({origin}) does not exist")
    elif Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:  # "unexpected UnicodeDecodeError", exit code 2
            raise ConfigError(
                f"{path}: not UTF-8 text, as TOML must be (byte {exc.start}): save it as UTF-8"
            ) from exc

    top: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: [{key}] must be a table")
            top[key] = _build_section(_SECTIONS[key], value, Path(path), key)
        elif key in _PATH_KEYS:
            top[key] = _typed(value, Path, f"{path}: {key}", Path(path).absolute().parent)
        else:
            known = ", ".join([*_PATH_KEYS, *_SECTIONS])
            raise ConfigError(f"{path}: unknown key {key!r}; known: {known}")

    _check_variable_names(env)
    for key in _PATH_KEYS:
        env_value = env.get(f"{ENV_PREFIX}{key.upper()}")
        if env_value:
            top[key] = Path(env_value)
    return Settings(**top)


def _check_variable_names(env: Mapping[str, str]) -> None:
    """Refuse a misspelt settings variable (``SEGMINT_WAREHOSUE``) while the one it means is
    unset: the night would run on the default path, relative to the working directory,
    against a new empty warehouse or landing zone. Other ``SEGMINT_*`` names are left alone
    (the dbt profile and the benchmarks read a few)."""
    meant = [f"{ENV_PREFIX}{key}" for key in ("CONFIG", *(k.upper() for k in _PATH_KEYS))]
    for name in env:
        if not name.upper().startswith("SEGMINT") or name in meant:
            continue
        close = difflib.get_close_matches(name.upper(), meant, n=1, cutoff=0.9)
        if close and not env.get(close[0]):
            raise ConfigError(
                f"environment variable {name} is not one segmint reads: did you mean "
                f"{close[0]}? (unset, so the default would be used)"
            )
