"""Holdout assignment by a stable hash.

A customer's bucket is the first 32 bits of ``sha256(audience || ':' || customer_id || ':' ||
salt)`` modulo 10 000; the customer is in the holdout when the bucket is below ``percent *
100``. The bucket depends on nothing else (not on who else is in the audience, the order of
rows or the DuckDB version), so a customer stays in the same group night after night, and
changing the salt reshuffles the groups on purpose.
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def holdout_bucket_sql(audience: str, customer_id: str, salt: str) -> str:
    """A SQL expression (0..9999) over three SQL text expressions."""
    return (
        f"(('0x' || left(sha256({audience} || ':' || {customer_id} || ':' || {salt}), 8))"
        f"::ubigint % {BUCKETS})"
    )


def holdout_bucket(audience: str, customer_id: str, salt: str = "") -> int:
    """The same bucket computed in Python, for documentation and checks of single ids."""
    digest = hashlib.sha256(f"{audience}:{customer_id}:{salt}".encode()).hexdigest()
    return int(digest[:8], 16) % BUCKETS
