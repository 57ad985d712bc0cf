"""Assemble the nightly report: open the warehouse read-only, render every section, write
one HTML file atomically, close the warehouse."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

from segmint.config import Settings
from segmint.outputs import written_atomically
from segmint.report import sections as s
from segmint.report.data import Reader
from segmint.report.page import esc, grid, kpis, note, page
from segmint.stages import SegmintError, StageResult
from segmint.warehouse import connect, exclusive

log = logging.getLogger(__name__)

# Tables whose newest as-of date stands for "the latest run" when no date is given.
_AS_OF_SOURCES = (
    ("ml.customer_segments", "as_of_date"),
    ("ml.propensity_scores", "as_of_date"),
    ("marts.customer_features", "as_of_date"),
    ("ops.load_manifest", "partition_date"),
)


def latest_as_of(reader: Reader) -> date:
    for table, column in _AS_OF_SOURCES:
        dates = reader.dates(table, column)
        if dates:
            return dates[0]
    raise SegmintError(
        "the warehouse has no segments, scores, features or loads yet, so there is no "
        "run to report on; pass --as-of or run `segmint run` first"
    )


# The tables a night's stages write under its as-of date, from the transform on: a date
# found in one of them is a night that ran (one that failed after writing it too). The
# features and the model logic hold the newest night only: a night that failed between its
# transform and its segments, with a later night run since, leaves no trace here.
_NIGHT_SOURCES = (
    ("ml.customer_segments", "as_of_date"),
    ("ml.propensity_scores", "as_of_date"),
    ("ml.model_runs", "as_of_date"),
    ("marts.customer_features", "as_of_date"),
    ("ops.model_logic", "as_of_date"),
    ("audiences.summary", "as_of_date"),
    ("ops.pipeline_runs", "as_of_date"),
)


def check_night_ran(reader: Reader, as_of: date, warehouse: Path) -> None:
    """Refuse a ``--as-of`` no night was run for, naming the nights that were.

    A typo (2025 for 2026, a date in the future) wrote a report of nothing, "No segmentation
    for this date yet", exit code 0. So did a day whose partition was loaded but which no
    night processed (a night skipped, the first days of a backfill): the page and its
    ``<output>/<date>/`` folder looked like that night's report."""
    from segmint.transform import _day_spans

    nights = sorted({d for table, column in _NIGHT_SOURCES for d in reader.dates(table, column)})
    loads = reader.dates("ops.load_manifest", "partition_date")  # newest first
    if as_of in nights or (not nights and as_of in loads[:1]):
        return  # a night, or before any got to its features the newest load, as by default
    if nights:
        shown = _day_spans(nights[-30:])
        earlier = f"{len(nights) - 30} earlier and " if len(nights) > 30 else ""
        held = f"the nights run there are {earlier}{shown} (without --as-of, the newest)"
    elif loads:
        held = (
            "no night there got as far as its features yet (without --as-of, the newest "
            f"partition loaded, {loads[0]})"
        )
    else:
        held = "it holds no night yet: run `segmint run` first"
    loaded = ""
    if as_of in loads:
        loaded = (
            f" (its partition dt={as_of} is loaded, but no night as of that date got as far as "
            "its features or segments: skipped, or failed before them)"
        )
    raise SegmintError(
        f"no night of {as_of} was run in the warehouse {warehouse}{loaded}: {held}; check "
        "--as-of for a typo"
    )


def reporting_currency(reader: Reader, settings: Settings) -> str:
    """The currency of the marts' amounts: as the marts were built (marts.reporting_currency),
    else, in a warehouse built before that table existed, the current setting."""
    if reader.has("marts.reporting_currency"):
        code = reader.scalar("select min(currency_code) from marts.reporting_currency")
        if code:
            return str(code)
    return settings.transform.reporting_currency


def _build(reader: Reader, as_of: date, settings: Settings, out: Path, currency: str) -> s.Context:
    ctx = s.Context(reader=reader, as_of=as_of, settings=settings, out=out)
    ctx.cache["currency"] = currency  # money figures name it (persona cards, readouts)
    b = s.run_block
    ctx.cache["sections"] = [
        (
            "segments",
            "Segments",
            b(ctx, "Size and share", s.block_segment_sizes)
            + b(ctx, "Personas", s.block_personas)
            + b(ctx, "Segments by RFM score", s.block_rfm_heatmap)
            + b(ctx, "Movement since the previous run", s.block_transitions)
            + b(ctx, "How the number of segments was chosen", s.block_k_selection),
        ),
        ("propensity", "Propensity", s.section_propensity(ctx)),
        (
            "audiences",
            "Audiences",
            b(ctx, "Size, holdout and movement", s.block_audiences)
            + b(ctx, "Latest readouts", s.block_readouts),
        ),
        (
            "data-quality",
            "Data quality",
            b(ctx, "Rows read, loaded, deduplicated and quarantined", s.block_loads)
            + b(ctx, "Quarantine reasons", s.block_quarantine)
            + b(ctx, "Great Expectations results", s.block_expectations),
        ),
        (
            "drift",
            "Drift",
            grid(
                b(ctx, "Segmentation features", s.block_feature_psi),
                b(ctx, "Segment centres", s.block_centroid_shift),
                b(ctx, "Propensity scores", s.block_score_psi),
                cls="grid3",
            ),
        ),
    ]
    return ctx


def _summary(ctx: s.Context) -> str:
    f = ctx.facts
    tiles = []
    if "customers" in f:
        tiles += [("customers segmented", f"{f['customers']:,}"), ("segments", str(f["segments"]))]
    for m in f.get("models", []):
        if m.get("ranked_by"):
            # No model published: tonight's list is a baseline rule's ranking. "purchase
            # AUC, not published" beside it read as a model that scored, or as no list.
            label = f"ranks tonight's {m['model']} list: no model published"
            if m.get("auc") is not None:
                label += f" (candidate's AUC {m['auc']:.3f})"
            tiles.append((label, s.charts.scorer_label(m["ranked_by"][0])))
        elif m.get("auc") is not None:
            # A candidate the gate refused is not the model that scored tonight.
            # A young shop's first candidate that lost is not published either, and no
            # model scores: a bare "churn AUC 0.784" read as a working churn model.
            refused = m.get("scored_with") or m.get("status") == "not_published"
            label = f"{m['model']} AUC" + (", not published" if refused else "")
            if m.get("stale"):  # no scores tonight: the AUC is an older night's
                label += f" (run of {m['stale']})"
            tiles.append((label, f"{m['auc']:.3f}"))
    if "audiences" in f:
        tiles.append(("customers targeted", f"{f['audiences'][1]:,}"))
    if "quarantine_today" in f:
        # "today" read wrong on a backfill or a report drawn days later: name the partition
        tiles.append((f"quarantined rows of {ctx.as_of}", f"{f['quarantine_today'][0]:,}"))
    sentences = "".join(f"<li>{esc(x)}</li>" for x in s.summary_sentences(ctx))
    warn = (
        note(f"{len(ctx.warnings)} block(s) could not be drawn; see below.", "error")
        if ctx.warnings
        else ""
    )
    return (kpis(tiles) if tiles else "") + f"<ul>{sentences}</ul>" + warn


def render_report(
    warehouse: Path,
    as_of: date | None,
    out: Path,
    *,
    settings: Settings | None = None,
) -> Path:
    """Write the report for ``as_of`` (default: the latest run) to ``out``; return ``out``."""
    return _render(Path(warehouse), as_of, Path(out), settings or Settings())[0]


def _warm_up() -> None:
    """Import the chart and statistics libraries while DuckDB runs the first queries.

    The first blocks wait on DuckDB (which releases the GIL), so a second thread importing
    matplotlib and scipy.special meanwhile takes a second or more off a report.
    """
    try:
        import matplotlib.backends.backend_svg
        import matplotlib.figure  # noqa: F401
        from matplotlib import font_manager

        font_manager.findfont("sans-serif")
        import scipy.special  # noqa: F401  (audience readouts)
    except Exception:  # a failed warm-up only loses time; the real import reports errors
        log.debug("report warm-up import failed", exc_info=True)


def _render(
    warehouse: Path, as_of: date | None, out: Path, settings: Settings
) -> tuple[Path, s.Context, float]:
    started = time.perf_counter()
    # Opened before the page is drawn: a --out where no file can be written was refused
    # only once every section had been read and drawn.
    with written_atomically(out) as tmp:
        threading.Thread(target=_warm_up, name="report-warm-up", daemon=True).start()
        con = connect(warehouse, read_only=True)
        try:
            con.execute("set enable_progress_bar = false")
            reader = Reader(con)
            as_of = as_of or latest_as_of(reader)
            currency = reporting_currency(reader, settings)
            ctx = _build(reader, as_of, settings, out, currency)
        finally:
            con.close()
        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        document = page(
            f"segmint nightly report · {as_of}",
            f"warehouse {warehouse.name} · as of {as_of} · "
            f"money in {ctx.cache['currency']} · generated {generated}",
            _summary(ctx),
            ctx.cache["sections"],
        )
        tmp.write_text(document, encoding="utf-8")
    return out, ctx, time.perf_counter() - started


def report_command(settings: Settings, as_of: date | None, out: Path | None) -> str:
    """``segmint report``: resolve the as-of date and output path, render, say where."""
    with exclusive(settings.warehouse, "report"):
        return _report_command(settings, as_of, out)


def _report_command(settings: Settings, as_of: date | None, out: Path | None) -> str:
    con = connect(settings.warehouse, read_only=True)
    try:
        if as_of is None:
            as_of = latest_as_of(Reader(con))
        else:
            check_night_ran(Reader(con), as_of, settings.warehouse)
    finally:
        con.close()
    out = out or settings.run_output_dir(as_of) / "report.html"
    path, ctx, seconds = _render(settings.warehouse, as_of, out, settings)
    lines = [f"report for {as_of} written to {path} ({seconds:.1f}s)"]
    lines += [f"  {line}" for line in s.summary_sentences(ctx)]
    lines += [f"  warning: {w}" for w in ctx.warnings]
    return "\n".join(lines)


def write_report(settings: Settings, as_of: date) -> StageResult:
    """Pipeline stage: ``<output>/<as_of>/report.html`` from the working warehouse."""
    out = settings.run_output_dir(as_of) / "report.html"
    path, ctx, seconds = _render(settings.warehouse, as_of, out, settings)
    summary = s.summary_sentences(ctx)
    return StageResult(
        stage="report",
        rows_in=int(ctx.facts.get("customers", 0)),
        rows_out=1,
        summary=f"wrote {path} in {seconds:.1f}s: {summary[0] if summary else ''}",
        details={
            "path": str(path),
            "seconds": round(seconds, 3),
            "facts": s.summary_json(ctx),
            "summary": summary,
            "not_available": list(ctx.missing),
            "timings": {k: round(v, 3) for k, v in ctx.timings.items()},
        },
        warnings=list(ctx.warnings),
    )
