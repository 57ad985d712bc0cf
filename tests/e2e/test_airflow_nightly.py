"""The whole night through real Airflow (`airflow dags test`) on a small generated data set.

One module-scoped night, then, in order:

1. the first night publishes the contract tables (asserted on the published file), and
   docs/tables.md names every column of them;
2. a rerun of the same date is killed with SIGKILL while a stage writes; the published file
   is untouched; the retry completes while an analyst holds the published file open; the
   analyst keeps yesterday's data; the retry's published tables hash equal to the first
   night's (idempotency);
3. a file arrives late in an earlier partition; the next run loads it, then its quality
   gate fails: the published file stays as it was and ``ops.pipeline_runs`` records the
   failure.

Needs every stage of ``segmint.pipeline.STAGES``: skipped (with the reason) while one is
missing.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from segmint.airflow_env import airflow_environ, dags_test_command, ensure_ready
from segmint.pipeline import STAGES
from tests.e2e.airflow_support import (
    AS_OF,
    differing_tables,
    explain_differences,
    published_hashes,
    published_path,
    published_stamp,
    small_night,
)

DAG_RUN_TIMEOUT_S = 900


def _missing_modules() -> list[str]:
    modules = {target.split(":")[0] for target in STAGES.values()} | {"segmint.generate"}
    return sorted(m for m in modules if importlib.util.find_spec(m) is None)


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(_missing_modules()), reason=f"stages not implemented yet: {_missing_modules()}"
    ),
]


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Night:
    """A landing zone, a working warehouse and the Airflow environment to run the DAG."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.warehouse = Path(env["SEGMINT_WAREHOUSE"])
        self.published = published_path(self.warehouse)
        self.logs = root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.runs = 0

    def start(self, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, Path]:
        self.runs += 1
        log = self.logs / f"dags-test-{self.runs}.log"
        proc = subprocess.Popen(
            dags_test_command(AS_OF.isoformat()),
            env={**self.env, **(extra_env or {})},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, to kill it whole
        )
        return proc, log

    def run(self, extra_env: dict[str, str] | None = None) -> tuple[int, str]:
        proc, log = self.start(extra_env)
        try:
            code = proc.wait(timeout=DAG_RUN_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        return code, log.read_text()

    def pipeline_runs(self) -> list[tuple]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(
                "select run_id, task_id, status, try_number, rows_in, rows_out, error "
                "from ops.pipeline_runs order by recorded_at"
            ).fetchall()
        finally:
            con.close()


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Night:
    root = tmp_path_factory.mktemp("airflow_night")
    base = small_night(root)
    # the same AIRFLOW_HOME as tests/dags: one metadata database per test session
    env = airflow_environ(tmp_path_factory.getbasetemp() / "airflow_home", base=base)
    ensure_ready(env)
    the_night = Night(root, env)
    code, output = the_night.run()
    assert code == 0, f"first night failed:\n{output[-6000:]}"
    the_night.first = published_hashes(the_night.published)
    the_night.first_copy = root / "first-night.duckdb"
    shutil.copyfile(the_night.published, the_night.first_copy)
    return the_night


def test_first_night_publishes_the_contract_tables(night: Night) -> None:
    assert night.published.exists()
    as_of, _ = published_stamp(night.published)
    assert as_of == AS_OF
    con = duckdb.connect(str(night.published), read_only=True)
    try:
        events, distinct = con.execute(
            "select count(*), count(distinct event_id) from raw.events"
        ).fetchone()
        assert events > 1000 and events == distinct, "raw.events loaded once, deduplicated"
        features = con.execute(
            "select count(*) from marts.customer_features where as_of_date = ?", [AS_OF]
        ).fetchone()[0]
        assert features > 0
        segmented = con.execute(
            "select count(*), count(distinct segment_name) from ml.customer_segments "
            "where as_of_date = ?",
            [AS_OF],
        ).fetchone()
        assert segmented[0] == features and segmented[1] >= 2
        # every model ran for the night; a model the publication rules let through scores,
        # and one withheld (a tiny data set) leaves the ranking to its baseline rule
        models = dict(
            con.execute(
                "select model_name, status from ml.model_runs where as_of_date = ?", [AS_OF]
            ).fetchall()
        )
        assert models.get("segmentation") == "published"
        assert {models.get("purchase"), models.get("churn")} <= {"published", "not_published"}
        for model in ("purchase", "churn"):
            scored = con.execute(
                "select count(*), coalesce(min(score), 0), coalesce(max(score), 0), "
                "list(distinct ranked_by) "
                "from ml.propensity_scores where as_of_date = ? and model_name = ?",
                [AS_OF, model],
            ).fetchone()
            assert scored[0] > 0, model
            rules = (["baseline_recency"], ["baseline_bgnbd"])
            expected = (["model"],) if models[model] == "published" else rules
            assert scored[3] in expected, (model, scored[3])
            assert 0.0 <= scored[1] <= scored[2] <= 1.0
    finally:
        con.close()
    # every stage recorded its success, with row counts, in the working warehouse
    rows = night.pipeline_runs()
    assert {r[1] for r in rows if r[2] == "success"} == set(STAGES)
    ingest = next(r for r in rows if r[1] == "ingest")
    assert ingest[4] > 0 and ingest[5] > 0


TABLES_DOC = Path(__file__).resolve().parents[2] / "docs" / "tables.md"


def documented_columns(text: str) -> dict[str, tuple[set[str], set[str]]]:
    """{table: (every name its entries of docs/tables.md write in backticks, the names of
    its column lists)}.

    A table's entries are the bullets naming it followed by ``(``, ``:`` or ``,`` and the
    section under a ``###`` heading naming it. A column list is a backticked span holding
    commas (the first name of each item: ``status ('loaded'|'failed')`` is ``status``), the
    span list in parentheses right after the table when there is one, and the first cells
    of a section's table. ``mean_<f>`` stands for ``mean_`` and any name of the entry.
    """
    ident = re.compile(r"[a-z_][a-z0-9_]*(?:<f>)?")
    table = r"`([a-z_]+\.[a-z_]+)`"
    entries: dict[str, tuple[set[str], set[str]]] = {}

    def spans_of(part: str) -> list[str]:
        return [span.replace('"', "") for span in re.findall(r"`([^`]*)`", part)]

    def add(name: str, spans: list[str], lists: list[str]) -> None:
        named, listed = entries.setdefault(name, (set(), set()))
        named.update(n for span in spans for n in ident.findall(span))
        listed.update(
            m.group() for span in lists for item in span.split(",") if (m := ident.search(item))
        )

    for bullet in re.findall(r"^ *- (.*(?:\n(?! *- |#|\n).*)*)", text, re.M):
        spans = spans_of(bullet)
        for owner in re.finditer(table + r"(?: \(([^()]*)\)| ?(?=[:,]))", bullet):
            own = spans if owner.group(2) is None else spans_of(owner.group(2))
            add(owner.group(1), spans, [span for span in own if "," in span])
    for heading, body in re.findall(r"^### (.*)\n((?:(?!#).*\n)*)", text, re.M):
        rows = re.findall(r"^\| ([^|]+) \|", body, re.M)
        cells = [c.strip() for row in rows for c in row.split(",")]
        cells = [c for c in cells if c not in ("column", "---")]
        for name in re.findall(table, heading):
            add(name, cells + spans_of(body), [", ".join(cells)])
    return entries


def test_docs_tables_md_names_every_column_analysts_read(night: Night) -> None:
    """docs/tables.md is the analysts' contract: every column of every marts, ml, audiences
    and ops table of the published copy is named in the table's entry, and every column
    list there names columns the table has (it missed ``ml.model_runs.message`` and
    ``marts.customer_product_daily._loaded_at``)."""
    docs = documented_columns(TABLES_DOC.read_text(encoding="utf-8"))
    con = duckdb.connect(str(night.first_copy), read_only=True)
    try:
        tables = con.execute(
            "select table_schema || '.' || table_name, list(column_name order by ordinal_position) "
            "from information_schema.columns "
            "where table_schema in ('marts', 'ml', 'audiences', 'ops') group by all order by 1"
        ).fetchall()
    finally:
        con.close()
    assert {"marts.customer_features", "ml.propensity_scores", "audiences.members"} <= {
        name for name, _ in tables
    }
    problems = []
    for name, columns in tables:
        if name not in docs:
            problems.append(f"{name}: no entry")
            continue
        named, listed = docs[name]
        templates = [n.removesuffix("<f>") for n in named if n.endswith("<f>")]
        problems += [
            f"{name}.{column}: not in docs/tables.md"
            for column in columns
            if column not in named
            and not any(column.removeprefix(t) in named for t in templates if column.startswith(t))
        ]
        problems += [
            f"{name}.{column}: in docs/tables.md, not in the table"
            for column in sorted(listed - set(columns))
            if not column.endswith("<f>") and not any(t + column in columns for t in templates)
        ]
    assert problems == []


def test_docs_tables_md_column_types_are_the_tables(night: Night) -> None:
    """The type cell of each column table of docs/tables.md is the published column's
    DuckDB type (names alone were compared)."""
    text = TABLES_DOC.read_text(encoding="utf-8")
    documented = {}
    for heading, body in re.findall(r"^### (.*)\n((?:(?!#).*\n)*)", text, re.M):
        rows = re.findall(r"^\| ([^|]+) \| ([^|]+) \|", body, re.M)
        for table in re.findall(r"`([a-z_]+\.[a-z_]+)`", heading):
            for names, kind in rows:
                if kind.strip() not in ("type", "---"):
                    documented |= {(table, n.strip()): kind.strip() for n in names.split(",")}
    assert len(documented) > 50
    con = duckdb.connect(str(night.first_copy), read_only=True)
    try:
        actual = {
            (f"{schema}.{table}", column): kind
            for schema, table, column, kind in con.execute(
                "select table_schema, table_name, column_name, data_type "
                "from information_schema.columns"
            ).fetchall()
        }
    finally:
        con.close()
    assert {key: actual.get(key) for key in documented} == documented


def test_every_ml_table_is_a_dbt_source(night: Night) -> None:
    """The ML outputs are declared as dbt sources so that dbt's docs and lineage show them to
    analysts (ml.recommendations was missing), each column with its type and meaning (none
    was declared: the analysts' docs page listed the ML tables without a column)."""
    import yaml

    sources = yaml.safe_load(
        (TABLES_DOC.parents[1] / "dbt_project/models/marts/_marts__sources.yml").read_text()
    )["sources"]
    declared = {
        t["name"]: [(c["name"], c["data_type"], bool(c.get("description"))) for c in t["columns"]]
        for s in sources
        if s["name"] == "ml"
        for t in s["tables"]
    }
    con = duckdb.connect(str(night.first_copy), read_only=True)
    try:
        built = dict(
            con.execute(
                "select table_name, list((column_name, lower(data_type), true) "
                "order by ordinal_position) from information_schema.columns "
                "where table_schema = 'ml' group by all"
            ).fetchall()
        )
    finally:
        con.close()
    assert {"customer_segments", "propensity_scores", "recommendations"} <= built.keys()
    assert built.keys() - declared.keys() == set()
    # ... with every column, its type and a description: `segmint docs` showed them bare.
    assert built == {t: declared[t] for t in built}


DOCS = [TABLES_DOC.parents[1] / "README.md", *sorted(TABLES_DOC.parent.glob("*.md"))]
_WAREHOUSE_TABLE = re.compile(r"\b(?:marts|ml|audiences|ops|analyst)\.[a-z_]+\b")


def docs_example_queries() -> list[tuple[str, str, str]]:
    """(where, file, statement) of every query the docs give to read the warehouse: the
    statements of each ``sql`` fenced block that reads a warehouse table (not the recipes
    that read a dataset's files), the ``.sql("...")`` calls of the ``python`` ones and
    README's one-line commands. ``file`` is the published file a block's ``-- duckdb ...``
    comment opens, else the analysts' copy."""
    queries = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for lang, block in re.findall(r"^ *```(sql|python)\n(.*?)^ *```", text, re.M | re.S):
            opened = re.search(r"^ *-- duckdb .*?(segmint\w*\.duckdb)", block, re.M)
            file = opened.group(1) if opened else "segmint_analyst.duckdb"
            if lang == "python":
                found = re.findall(r"\.sql\(\"([^\"]*)\"\)", block)
            else:
                lines = [ln for ln in block.splitlines() if not ln.strip().startswith("--")]
                found = [q for q in "\n".join(lines).split(";") if q.strip()]
            queries += [(doc.name, file, q.strip()) for q in found if _WAREHOUSE_TABLE.search(q)]
        one_liners = re.findall(r"\.sql\('([^']*)'\)|-readonly \S+ \"([^\"]*)\"", text)
        queries += [
            (doc.name, "segmint_analyst.duckdb", a or b)
            for a, b in one_liners
            if _WAREHOUSE_TABLE.search(a or b)
        ]
    return queries


def test_the_docs_example_queries_run_on_the_analysts_copy(night: Night) -> None:
    """Every query README.md and docs/*.md show runs as written on the copy the docs open:
    the analysts' copy unless a block says otherwise (docs/ingestion.md's quarantine queries
    failed there, "Table with name quarantine does not exist": the table is restricted, and
    they now say to open the full copy); README's one-liners return their 5 rows, the
    analysts' guide its segment counts."""
    queries = docs_example_queries()
    assert len(queries) >= 10, queries
    results, problems = {}, []
    for where, file, query in queries:
        con = duckdb.connect(str(night.published.with_name(file)), read_only=True)
        try:
            results[query] = con.execute(query.replace("<run id>", "x")).fetchall()
        except duckdb.Error as error:
            problems.append(f"{where}: {query!r} on {file}: {error}")
        finally:
            con.close()
    assert problems == []
    assert len(results["from ml.customer_segments limit 5"]) == 5
    assert len(results["from marts.customer_features limit 5"]) == 5
    segments = next(rows for query, rows in results.items() if "by rfm_segment" in query)
    assert segments and all(customers > 0 for _, customers, _ in segments)


READER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    q = "select (select published_at from ops.publication)::varchar, " \\
        "(select count(*) from ml.customer_segments)"
    print("|".join(map(str, con.execute(q).fetchone())), flush=True)
    for line in sys.stdin:  # keep querying the open file until told to stop
        print("|".join(map(str, con.execute(q).fetchone())), flush=True)
    """
)


def _wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        assert proc.poll() is None, f"the DAG run ended before {text!r}:\n{log.read_text()[-4000:]}"
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not seen in {timeout} s")


def test_kill_9_mid_write_then_retry_is_idempotent_and_never_blocks_readers(
    night: Night,
) -> None:
    before = file_digest(night.published)
    wal = night.warehouse.with_name(night.warehouse.name + ".wal")

    # 1. a rerun of the night is killed (SIGKILL, the whole process group) while dbt writes
    proc, log = night.start()
    _wait_for(log, "segmint: stage transform starting", proc, timeout=DAG_RUN_TIMEOUT_S)
    deadline = time.monotonic() + 10
    while not wal.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert file_digest(night.published) == before, "a killed night never touches readers"

    # 2. an analyst opens the published file and holds it while the retry runs
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(night.published)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        opened = reader.stdout.readline().strip().split("|")
        assert len(opened) == 2 and int(opened[1]) > 0
        code, output = night.run()
        assert code == 0, f"the retry failed:\n{output[-6000:]}"
        reader.stdin.write("query\n")
        reader.stdin.flush()
        again = reader.stdout.readline().strip().split("|")
        assert again == opened, "the open reader keeps yesterday's file, whole"
    finally:
        reader.kill()
        reader.wait()

    # 3. the retry published a new file with the same tables as the first night
    assert str(published_stamp(night.published)[1]) != opened[0], "a new file was published"
    now = published_hashes(night.published)
    differing = differing_tables(now, night.first)
    assert not differing, explain_differences(night.first_copy, night.published, differing)
    # and the DuckDB file holds no trace of the killed transaction
    con = duckdb.connect(str(night.warehouse), read_only=True)
    try:
        assert con.execute(
            "select count(*) = count(distinct event_id) from raw.events"
        ).fetchone() == (True,)
    finally:
        con.close()


def add_late_file(landing: Path, day: str) -> int:
    """A file arriving late in an earlier partition: that day's events under new ids."""
    folder = landing / "events" / f"dt={day}"
    source = sorted(folder.glob("*.jsonl.gz"))[0]
    lines = []
    with gzip.open(source, "rt") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the generator's deliberately malformed lines
            if isinstance(record, dict) and record.get("event_id"):
                record["event_id"] = f"{record['event_id']}-late"
                lines.append(json.dumps(record))
    with gzip.open(folder / "late-arrival.jsonl.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines)


def test_failed_quality_gate_keeps_yesterdays_publication(night: Night) -> None:
    """The next night picks up a late file of an earlier day, then its gate fails: the
    working warehouse has the late rows, readers still see the last good night."""
    before = file_digest(night.published)
    late = add_late_file(Path(night.env["SEGMINT_LANDING"]), "2026-06-20")
    config = night.root / "strict.toml"
    config.write_text(
        Path(night.env["SEGMINT_CONFIG"]).read_text()
        # a row-count bound no partition can meet: the gate must fail the as-of partition
        + "\n[ingest]\nmax_rows_per_partition = 1\n"
    )
    code, output = night.run({"SEGMINT_CONFIG": str(config)})

    assert code != 0
    assert "segmint: stage 'validate' failed for as_of=2026-06-30" in output
    assert "QualityGateError" in output
    assert file_digest(night.published) == before
    last = night.pipeline_runs()[-1]
    assert last[1:4] == ("validate", "failed", 1), "a gate failure is not retried"
    assert "QualityGateError" in last[6]
    run_id = last[0]
    assert not [r for r in night.pipeline_runs() if r[0] == run_id and r[1] == "publish"]

    count = "select count(*) from raw.events where _source_file like '%late-arrival%'"
    work = duckdb.connect(str(night.warehouse), read_only=True)
    pub = duckdb.connect(str(night.published), read_only=True)
    try:
        loaded = work.execute(count).fetchone()[0]
        assert 0 < loaded <= late, "the late file was loaded by the next run"
        assert pub.execute(count).fetchone() == (0,), "but not published: its gate failed"
    finally:
        work.close()
        pub.close()


def test_a_missing_delivery_stops_the_night_before_ingest(night: Night) -> None:
    """`wait_for_as_of_events_hours` with `require_as_of_events`: the as-of partition never
    landed and the wait is over (the night of 2026-06-30 runs long after 2026-07-01 01:00),
    so the first task fails at once, not retried, naming the folder, and nothing runs."""
    landing = Path(night.env["SEGMINT_LANDING"])
    partition = landing / "events" / f"dt={AS_OF}"
    away = night.root / "withheld-partition"
    before = file_digest(night.published)
    config = night.root / "waiting.toml"
    config.write_text(
        Path(night.env["SEGMINT_CONFIG"]).read_text()
        + "\n[ingest]\nwait_for_as_of_events_hours = 1\nrequire_as_of_events = true\n"
    )
    runs_before = len(night.pipeline_runs())
    shutil.move(partition, away)
    try:
        code, output = night.run({"SEGMINT_CONFIG": str(config)})
    finally:
        shutil.move(away, partition)

    assert code != 0
    assert "segmint: stage 'ingest' failed for as_of=2026-06-30" in output
    assert f"no events file in {partition} by 2026-07-01 01:00 UTC" in output
    assert "not retried" in output
    new = night.pipeline_runs()[runs_before:]
    assert [r[1:4] for r in new] == [("ingest", "failed", 1)], "nothing after it ran"
    assert "the delivery for 2026-06-30 is late or missing" in new[0][6]
    assert file_digest(night.published) == before
