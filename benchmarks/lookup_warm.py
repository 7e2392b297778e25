"""Warm lookup timing in a process of its own (so its peak memory is its own).

Prints JSON: percentiles of whole lookups (all 52 domains) and of the DuckDB query alone.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from datetime import date

from creditcert import config
from creditcert import lookup as records
from creditcert.data.store import Store


def main() -> None:
    home, n = sys.argv[1], int(sys.argv[2])
    settings = config.load(home)
    started = time.perf_counter()
    store = Store(settings.data_dir, settings.catalog)
    codes = store.subject_codes(with_records=None, limit=None)
    opened = time.perf_counter() - started
    rng = random.Random(7)
    picks = rng.sample(codes, n)
    del codes
    request = records.resolve_request(
        settings.catalog, as_of=date(2026, 7, 1), all_domains=True, years=5
    )
    for code in picks[:10]:  # warm-up
        records.lookup(store, settings, code, request)
    whole, query = [], []
    for code in picks:
        t0 = time.perf_counter()
        records.lookup(store, settings, code, request)
        whole.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        store.records(code, request.domains)
        query.append((time.perf_counter() - t0) * 1000)
    whole.sort()
    query.sort()
    print(
        json.dumps(
            {
                "p50_ms": whole[len(whole) // 2],
                "p95_ms": whole[int(len(whole) * 0.95)],
                "max_ms": whole[-1],
                "query_p50_ms": query[len(query) // 2],
                "open_ms": opened * 1000,
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                "sample_codes": picks[:10],
            }
        )
    )


if __name__ == "__main__":
    main()
