"""The service's partner sync (docs/service.md, "Partner sync"): every `partners.sync_interval`
seconds, partners added by URL are synced as `creditcert partner sync` does (conditional GET,
every import check, the good bundle kept), in a thread so requests never wait on it.

One asyncio task in the serving process's lifespan runs the rounds one after another: the first
at start, then every interval with ±10 % jitter (cities started together do not fetch in step).
There is no backoff: a round costs one conditional request per partner, and a partner that comes
back is synced in the very next round. Instances sharing a home take turns through the home's
sync lock (`City.sync_partners(wait=False)`): a round that finds it held is skipped, since the
other process's result lands in the same files. Verification builds its trust store from those
files on every request, so a new bundle counts from the moment it is written.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from creditcert.city import City

LOG = logging.getLogger("creditcert.sync")


class SyncMetrics:
    """Per partner: rounds by outcome, and the times of the last good sync and of the first
    failure since (from the home's sync state, so they hold whichever process synced)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.rounds = Counter(
            "creditcert_partner_syncs",
            "Partner syncs by partner and outcome (updated, unchanged, refused, unreachable)",
            ["partner", "status"],
            registry=registry,
        )
        self.last_good = Gauge(
            "creditcert_partner_last_good_sync_seconds",
            "Unix time of the partner's last good sync (0: never)",
            ["partner"],
            registry=registry,
        )
        self.stale_since = Gauge(
            "creditcert_partner_stale_since_seconds",
            "Unix time of the first failed sync since the last good one (0: syncing fine)",
            ["partner"],
            registry=registry,
        )


class PartnerSync:
    """The rounds of one service: `round()` syncs once; `run()` is the scheduled task."""

    def __init__(
        self,
        city: City,
        clock: Callable[[], datetime],
        metrics: SyncMetrics,
        *,
        jitter: Callable[[], float] = random.random,
    ):
        self.city = city
        self.clock = clock
        self.metrics = metrics
        self.jitter = jitter
        self.interval = city.settings.partners.sync_interval

    def round(self) -> list | None:
        """Sync every partner added by URL, unless another process is syncing this home (None)."""
        partners = self.city.partners
        codes = [c for c in partners.codes() if partners.sync_state(c) is not None]
        if not codes:
            return []
        results = self.city.sync_partners(codes, at=self.clock(), wait=False)
        for r in results or ():
            self.metrics.rounds.labels(r.code, r.status).inc()
            if not r.ok:
                LOG.warning("partner %s: sync %s: %s", r.code, r.status, r.message)
        for code in codes:
            state = partners.sync_state(code)
            self.metrics.last_good.labels(code).set(_seconds(state.ok_at if state else None))
            self.metrics.stale_since.labels(code).set(
                _seconds(state.failing_since if state else None)
            )
        return results

    async def run(self) -> None:
        """Round after round until cancelled; a round that raises is logged, never fatal."""
        while True:
            try:
                await asyncio.to_thread(self.round)
            except Exception:
                LOG.exception("partner sync round failed")
            await asyncio.sleep(self.interval * (0.9 + 0.2 * self.jitter()))


def _seconds(stamp: str | None) -> float:
    return datetime.fromisoformat(stamp).timestamp() if stamp else 0.0
