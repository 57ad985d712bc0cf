"""Write the event files: JSON lines (plain or gzip) or Parquet, one file per export.

Each file is rendered by one DuckDB query over an Arrow slice of the final events (fields that
are absent are left out of the JSON object, not written as null) and written whole; two files
are rendered at a time. Output bytes depend only on the data: gzip headers carry no time or
name, Parquet files no timestamps, and DuckDB keeps insertion order.
"""

from __future__ import annotations

import json
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from segmint.generate import params as P
from segmint.generate.dirt import BAD_EVENT_TYPES, BAD_TIMESTAMPS, Placed
from segmint.generate.simulate import OPEN, Catalogue, page_table, search_vocabulary
from segmint.outputs import written_atomically
from segmint.warehouse import EVENT_TYPES  # the contract; simulate.py codes index it

GZIP_LEVEL = 1
APP_VERSIONS = ("5.12.0", "5.13.1", "6.0.2")
DEVICE_TYPES = ("desktop", "mobile", "tablet")
# Timestamp spellings: UTC with Z, local time with its offset (app), naive UTC (e-mail tool).
TS_Z, TS_OFFSET, TS_NAIVE = range(3)


def uuid_sql(prefix: str) -> str:
    """SQL for the UUID whose 128 bits are the columns ``<prefix>_hi`` and ``<prefix>_lo``."""
    return f"((({prefix}_hi)::uhugeint << 64) | ({prefix}_lo)::uhugeint)::uuid::varchar"


_TS_TEXT = f"""coalesce(
                ts_bad,
                case when ts_fmt = {TS_NAIVE}
                    then strftime(ts_local, '%Y-%m-%d %H:%M:%S')
                    else strftime(ts_local, '%Y-%m-%dT%H:%M:%S.%g') || ts_suffix
                end
            )"""

JSON_SQL = f"""
select
    case when cut is null then body
        else left(body, greatest(2, floor(length(body) * cut)::integer))
    end || chr(10) as line
from (
    select
        cut,
        concat(
            f_type,
            ',"event_id":"' || {uuid_sql("eid")} || '"',
            ',"event_ts":"',
            {_TS_TEXT},
            '"',
            ',"customer_id":"C' || customer_code::varchar || '"',
            ',"anonymous_id":"' || {uuid_sql("anon")} || '"',
            ',"session_id":"' || {uuid_sql("session")} || '"',
            f_page,
            f_product,
            f_quantity,
            f_search,
            f_device,
            f_channel,
            f_campaign,
            ',"time_on_page_s":' || time_on_page_s::varchar,
            f_scroll,
            ',"order_id":"ORD-' || order_no::varchar || '","revenue":' || revenue::varchar,
            f_currency,
            f_app,
            '}}'
        ) as body
    from {{src}}
)
"""

PARQUET_SQL = f"""
select
    {uuid_sql("eid")} as event_id,
    event_type::varchar as event_type,
    make_timestamptz(ts_utc_us) as event_ts,
    'C' || customer_code::varchar as customer_id,
    {uuid_sql("anon")} as anonymous_id,
    {uuid_sql("session")} as session_id,
    page_url::varchar as page_url,
    page_type::varchar as page_type,
    referrer::varchar as referrer,
    product_id::varchar as product_id,
    product_category::varchar as product_category,
    price,
    quantity::integer as quantity,
    search_query::varchar as search_query,
    device_type::varchar as device_type,
    country::varchar as country,
    utm_source::varchar as utm_source,
    utm_medium::varchar as utm_medium,
    utm_campaign::varchar as utm_campaign,
    time_on_page_s,
    scroll_depth,
    'ORD-' || order_no::varchar as order_id,
    revenue,
    currency::varchar as currency,
    app_version::varchar as app_version
from {{src}}
"""


def _dict(codes: np.ndarray, values: list[str] | tuple[str, ...]) -> pa.DictionaryArray:
    codes = np.asarray(codes)
    idx = _masked(np.where(codes < 0, 0, codes).astype(np.int32), codes < 0)
    return pa.DictionaryArray.from_arrays(idx, pa.array(list(values), pa.string()))


def _masked(values: np.ndarray, mask: np.ndarray) -> pa.Array:
    """An Arrow array with nulls where ``mask`` (built from buffers: no pandas import)."""
    arr = pa.array(values)
    if not mask.any():
        return arr
    validity = pa.py_buffer(np.packbits(~mask, bitorder="little"))
    return pa.Array.from_buffers(arr.type, len(arr), [validity, arr.buffers()[1]])


def _offset_text(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _jstr(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def events_table(
    placed: Placed,
    *,
    customer_code: np.ndarray,
    anon_uid: np.ndarray,
    session_uid: np.ndarray,
    catalogue: Catalogue,
    campaign_names: list[str],
    json_fragments: bool,
) -> pa.Table:
    """The final events as an Arrow table ready for :data:`JSON_SQL` or :data:`PARQUET_SQL`.

    For JSON, fields that depend only on a small domain (page, product, device, channel...)
    arrive as dictionary columns whose values are ready-made JSON fragments such as
    ``,"page_url":"...","page_type":"product"``; a null fragment leaves the field out.
    """
    c = placed.cols
    kind = c["kind"]
    page_types, page_paths, _ = page_table()
    sku = [f"SKU-{code}" for code in catalogue.product_code.tolist()]  # the catalogue
    urls = [P.SHOP_URL + p for p in page_paths] + [f"{P.SHOP_URL}/p/{s}" for s in sku]
    url_types = page_types + ["product"] * len(sku)
    channel = c["channel"]
    countries = [x[0] for x in P.COUNTRIES]
    terms = search_vocabulary()

    def channel_field(pos: int) -> np.ndarray:
        present = np.array([x[pos] is not None for x in P.CHANNELS])
        return np.where((channel >= 0) & present[np.maximum(channel, 0)], channel, -1)

    offsets = c["offset_s"]
    is_app = c["app"] >= 0
    ts_fmt = np.where(is_app, TS_OFFSET, np.where(kind == OPEN, TS_NAIVE, TS_Z))
    uniq_off, off_code = np.unique(np.where(is_app, offsets, 0), return_inverse=True)
    suffixes = [_offset_text(int(s)) for s in uniq_off.tolist()]
    suffix_code = np.where(ts_fmt == TS_OFFSET, off_code, len(suffixes))
    suffixes.append("Z")
    ts_local = c["ts_us"] + np.where(ts_fmt == TS_OFFSET, offsets.astype(np.int64), 0) * 1_000_000

    cust = c["customer"]
    anon = c["anon"]
    sess = c["session"]
    nan = np.isnan
    order = c["order"]
    common = {
        "eid_hi": _masked(c["eid_hi"], placed.no_event_id),
        "eid_lo": pa.array(c["eid_lo"]),
        "anon_hi": _masked(anon_uid[np.maximum(anon, 0), 0], anon < 0),
        "anon_lo": pa.array(anon_uid[np.maximum(anon, 0), 1]),
        "session_hi": _masked(session_uid[np.maximum(sess, 0), 0], sess < 0),
        "session_lo": pa.array(session_uid[np.maximum(sess, 0), 1]),
        "ts_local": pa.array(ts_local.astype("datetime64[us]")),
        "ts_fmt": pa.array(ts_fmt.astype(np.int8)),
        "ts_suffix": _dict(suffix_code, suffixes),
        "ts_bad": _dict(placed.ts_bad, BAD_TIMESTAMPS),
        "customer_code": _masked(customer_code[np.maximum(cust, 0)], cust < 0),
        "time_on_page_s": _masked(c["time_on_page"], nan(c["time_on_page"])),
        "order_no": _masked(order, order < 0),
        "revenue": _masked(c["revenue"], nan(c["revenue"])),
    }
    if json_fragments:
        quantity = c["quantity"]
        n_qty = int(quantity.max(initial=0)) + 1
        device_country = np.where(
            (c["device"] < 0) & (c["country"] < 0),
            -1,
            (c["device"].astype(np.int32) + 1) * (len(countries) + 1) + c["country"] + 1,
        )
        dc_values = [
            (f',"device_type":"{d}"' if d else "") + (f',"country":"{k}"' if k else "")
            for d in ("", *DEVICE_TYPES)
            for k in ("", *countries)
        ]
        channel_values = [
            "".join(
                f',"{name}":"{value}"'
                for name, value in (("referrer", ref), ("utm_source", src), ("utm_medium", med))
                if value
            )
            for _, src, med, ref in P.CHANNELS
        ]
        scroll = c["scroll"]
        scroll_code = np.where(nan(scroll), -1, np.rint(np.nan_to_num(scroll) * 100)).astype(int)
        table = {
            "f_type": _dict(kind, [f'{{"event_type":"{t}"' for t in EVENT_TYPES + BAD_EVENT_TYPES]),
            **common,
            "f_page": _dict(
                c["page"],
                [
                    f',"page_url":"{u}","page_type":"{t}"'
                    for u, t in zip(urls, url_types, strict=True)
                ],
            ),
            "f_product": _dict(
                c["product"],
                [
                    f',"product_id":"{s}","product_category":"{P.CATEGORIES[k]}","price":{p!r}'
                    for s, k, p in zip(
                        sku, catalogue.category.tolist(), catalogue.price.tolist(), strict=True
                    )
                ],
            ),
            "f_quantity": _dict(quantity, [f',"quantity":{q}' for q in range(n_qty)]),
            "f_search": _dict(c["search"], [f',"search_query":{_jstr(t)}' for t in terms]),
            "f_device": _dict(device_country, dc_values),
            "f_channel": _dict(channel, channel_values),
            "f_campaign": _dict(c["campaign"], [f',"utm_campaign":"{x}"' for x in campaign_names]),
            "f_scroll": _dict(scroll_code, [f',"scroll_depth":{k / 100!r}' for k in range(101)]),
            "f_currency": _dict(c["currency"], [',"currency":"USD"']),
            "f_app": _dict(c["app"], [f',"app_version":"{v}"' for v in APP_VERSIONS]),
            "cut": _masked(placed.cut, nan(placed.cut)),
        }
        return pa.table(table)
    return pa.table(
        {
            **common,
            "event_type": _dict(kind, EVENT_TYPES + BAD_EVENT_TYPES),
            "ts_utc_us": pa.array(c["ts_us"]),
            "page_url": _dict(c["page"], urls),
            "page_type": _dict(c["page"], url_types),
            "referrer": _dict(channel_field(3), [x[3] or "" for x in P.CHANNELS]),
            "product_id": _dict(c["product"], sku),
            "product_category": _dict(c["category"], P.CATEGORIES),
            "price": _masked(c["price"], nan(c["price"])),
            "quantity": _masked(c["quantity"], c["quantity"] < 0),
            "search_query": _dict(c["search"], terms),
            "device_type": _dict(c["device"], DEVICE_TYPES),
            "country": _dict(c["country"], countries),
            "utm_source": _dict(channel_field(1), [x[1] or "" for x in P.CHANNELS]),
            "utm_medium": _dict(channel_field(2), [x[2] or "" for x in P.CHANNELS]),
            "utm_campaign": _dict(c["campaign"], campaign_names),
            "scroll_depth": _masked(c["scroll"], nan(c["scroll"])),
            "currency": _dict(c["currency"], ["USD"]),
            "app_version": _dict(c["app"], APP_VERSIONS),
        }
    )


def file_name(fmt: str, half: int) -> str:
    return f"events_{half * 12:02d}.{fmt}"


def write_events(
    table: pa.Table,
    placed: Placed,
    landing: Path,
    start: date,
    fmt: str,
    con,
) -> list[Path]:
    """Write every file of ``placed.files``; returns their paths in file order."""
    bounds = np.searchsorted(placed.file, np.arange(len(placed.files) + 1))
    paths = [
        landing / "events" / f"dt={start + timedelta(days=day)}" / file_name(fmt, half)
        for day, half in placed.files
    ]
    for path in {p.parent for p in paths}:
        path.mkdir(parents=True, exist_ok=True)

    def write_one(i: int) -> None:
        part = table.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i]))
        cur = con.cursor()
        try:
            name = f"events_part_{i}"
            cur.register(name, part)
            with written_atomically(paths[i]) as tmp:  # a dot file: ingest ignores it
                if fmt == "parquet":
                    import pyarrow.parquet as pq

                    out = cur.sql(PARQUET_SQL.replace("{src}", name)).to_arrow_table()
                    pq.write_table(out, tmp, compression="zstd", write_statistics=True)
                else:
                    lines = cur.sql(JSON_SQL.replace("{src}", name)).to_arrow_table()["line"]
                    data = b"".join(_buffer(chunk) for chunk in lines.chunks)
                    if fmt == "jsonl.gz":
                        data = zlib.compress(data, GZIP_LEVEL, wbits=31)  # gzip, mtime 0
                    tmp.write_bytes(data)
            cur.unregister(name)
        finally:
            cur.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(write_one, range(len(paths))))
    return paths


def _buffer(chunk: pa.Array) -> bytes | memoryview:
    """The concatenated bytes of a string array, without copying row by row."""
    if len(chunk) == 0:
        return b""
    offsets_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(chunk.buffers()[1], dtype=offsets_type)
    lo, hi = offsets[chunk.offset], offsets[chunk.offset + len(chunk)]
    return memoryview(chunk.buffers()[2])[lo:hi]
