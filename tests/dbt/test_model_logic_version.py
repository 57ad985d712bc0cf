"""A change to how stored rows are computed must be a conscious decision about
``MODEL_LOGIC_VERSION``.

The incremental models keep the rows of past days. When their logic changes (or the logic
of a model, macro, seed or default var they read), a warehouse upgraded to the new code
keeps old rows beside new nights unless ``segmint.transform.MODEL_LOGIC_VERSION`` is bumped:
the bump makes the next night rebuild every model once (docs/models.md, "Upgrades").

Nothing can tell automatically whether a change alters stored rows (a faster plan does not,
a new rule does). So this test fingerprints what the stored rows are computed from, comments
and layout left out, and fails when it changes, asking the author to decide: bump the
version when rows would now come out differently, and in either case record the new
fingerprint below.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from segmint.transform import MODEL_LOGIC_VERSION

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"

# The fingerprint reviewed together with the version beside it. Update both lines together.
REVIEWED_VERSION = "2026-12-07.8"
REVIEWED_FINGERPRINT = "98e0056f10f21959"

_REF = re.compile(r"""\bref\(\s*['"](\w+)['"]\s*\)""")
_INCREMENTAL = re.compile(r"""materialized\s*=\s*['"]incremental['"]""")


def stored_row_sources(project: Path = DBT_PROJECT) -> list[Path]:
    """The files stored rows are computed from: every incremental model and the models it
    reads, directly or not; every macro and seed; dbt_project.yml (the default vars, the
    rule segments' definitions)."""
    models = {path.stem: path for path in (project / "models").rglob("*.sql")}
    texts = {name: path.read_text(encoding="utf-8") for name, path in models.items()}
    wanted = {name for name, text in texts.items() if _INCREMENTAL.search(text)}
    pending = list(wanted)
    while pending:
        for upstream in _REF.findall(texts[pending.pop()]):
            if upstream in models and upstream not in wanted:
                wanted.add(upstream)
                pending.append(upstream)
    return sorted(
        [models[name] for name in wanted]
        + list((project / "macros").rglob("*.sql"))
        + list((project / "seeds").rglob("*.csv"))
        + [project / "dbt_project.yml"]
    )


def _without_comments(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".sql":
        text = re.sub(r"\{#.*?#\}", " ", text, flags=re.DOTALL)
        text = re.sub(r"--[^\n]*", " ", text)
    elif path.suffix == ".yml":
        text = re.sub(r"(?m)(^|\s)#[^\n]*", " ", text)
    return " ".join(text.split())


def fingerprint(project: Path = DBT_PROJECT) -> str:
    digest = hashlib.sha256()
    for path in stored_row_sources(project):
        digest.update(path.relative_to(project).as_posix().encode())
        digest.update(b"\0" + _without_comments(path).encode() + b"\0")
    return digest.hexdigest()[:16]


def test_the_sources_of_stored_rows_include_every_incremental_model_and_its_upstream() -> None:
    names = {path.stem for path in stored_row_sources()}
    # incremental models, and views they read (staging is a view: an upgrade does not
    # rebuild the rows computed from it)
    assert {"int_events_sessionised", "customer_feature_history", "orders"} <= names
    assert {"int_events_attributed", "stg_segmint__events"} <= names
    assert {"rfm_segment_map", "dbt_project", "incremental"} <= names
    # a table rebuilt every night whatever changed is not one of them
    assert "customers" not in names


def test_comments_and_layout_do_not_change_the_fingerprint(tmp_path: Path) -> None:
    for source in stored_row_sources():
        target = tmp_path / source.relative_to(DBT_PROJECT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    before = fingerprint(tmp_path)
    model = tmp_path / "models" / "marts" / "orders.sql"
    text = model.read_text(encoding="utf-8")
    model.write_text("-- a new comment\n{# and a note #}\n" + text.replace("\n", "\n\n"))
    assert fingerprint(tmp_path) == before
    model.write_text(text.replace("select", "select distinct", 1), encoding="utf-8")
    assert fingerprint(tmp_path) != before


def test_a_change_to_how_stored_rows_are_computed_was_reviewed_for_the_logic_version() -> None:
    current = fingerprint()
    assert (MODEL_LOGIC_VERSION, current) == (REVIEWED_VERSION, REVIEWED_FINGERPRINT), (
        "The logic that stored rows are computed from changed (incremental models, the "
        "models they read, macros, seeds or dbt_project.yml). If a warehouse built before "
        "this change would now keep rows computed the old way beside new nights, bump "
        "segmint.transform.MODEL_LOGIC_VERSION (the next night then rebuilds every model "
        "once). Either way, set in tests/dbt/test_model_logic_version.py: "
        f"REVIEWED_VERSION = {MODEL_LOGIC_VERSION!r} and "
        f"REVIEWED_FINGERPRINT = {current!r}"
    )


_VAR = re.compile(r"""\bvar\(\s*['"](\w+)['"]""")


def test_every_var_stored_rows_are_computed_from_is_tracked_for_a_rebuild() -> None:
    """A var read by an incremental model or what it is built from either shapes past rows
    (its change rebuilds the model reading it: ROW_SHAPING_VARS) or is known not to."""
    from segmint.transform import _VARS_NOT_REBUILT, ROW_SHAPING_VARS

    read = {
        name
        for path in stored_row_sources()
        if path.suffix == ".sql"
        for name in _VAR.findall(_without_comments(path))
    }
    assert read <= set(ROW_SHAPING_VARS) | set(_VARS_NOT_REBUILT), read - set(ROW_SHAPING_VARS)
    models = {path.stem for path in (DBT_PROJECT / "models").rglob("*.sql")}
    assert set(ROW_SHAPING_VARS.values()) <= models
    assert {"cart_scope", "cart_lookback_days"} <= read
