"""The service under load (issue 11): a real `creditcert serve` on loopback, driven by closed-loop
httpx clients (HTTP/1.1, one connection each), on a generated sample city.

Scenarios, each request's latency recorded by the client:

1. verify by QR text (`POST /api/v1/verify`, multipart `qr`), 50 clients (target p95 <= 20 ms);
2. verify by PDF upload (multipart `file`), 10 clients (target p95 <= 400 ms);
3. issuance while verifying: as many issuing clients as the server has workers post
   `/api/v1/reports` for distinct subjects while 10 clients verify by QR text (targets: issuance
   within 15 % of the batch ceiling, verify p95 < 100 ms meanwhile).

Beside them, in the same run: the floor of the HTTP stack (`GET /healthz` at 50 clients), the
library's own warm `City.verify` of the same QR text and PDF in this process, and the batch
ceiling (`run_batch` on the same city with the same number of workers, as
benchmarks/batch_speed.py measures it; once before the server starts and once after it stops).
Every verify must answer 200 with verdict `accepted` and every issuance 201 with a new number;
anything else is counted as an error. The server's peak memory is VmHWM of the serving process
and the sum over its process tree (fork server and issuing workers; shared pages are counted in
each), reset before each scenario run.

The clients are verify-scoped and issue-scoped API tokens (a verify token is not rate limited),
and the city has no per-subject daily limit. Prints a Markdown table, or JSON with --json.

    python benchmarks/service_load.py [--subjects 3000] [--records 15000] [--runs 3]
        [--duration 8] [--qr-clients 50] [--pdf-clients 10] [--workers N] [--issue-clients N]
        [--issue-duration 30] [--issue-verify-clients 10] [--ceiling-reports 12] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx

from creditcert import config
from creditcert.city import City
from creditcert.data import sample
from creditcert.issue.pool import default_workers
from creditcert.model.clock import SHANGHAI

sys.path.insert(0, str(Path(__file__).parent))
from batch_speed import batch_run, cores_available  # a sibling script

RUNNING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")
BOUNDARY = "creditcert-load-0f3a9c"
ACCEPTED = b'"verdict":"accepted"'  # Starlette's JSONResponse writes compact JSON
_TLS = ssl.create_default_context()


def now() -> datetime:
    return datetime.now(SHANGHAI)


# --- the city ----------------------------------------------------------------------------------


def make_home(scratch: Path, subjects: int, records: int) -> Path:
    """A sample city with keys and no per-subject daily limit (the runs issue a lot)."""
    home = scratch / "city"
    config.init(home, admin_code="210100", name="沈阳市", name_en="Shenyang")
    path = home / config.CONFIG_NAME
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^rate_limit_per_day = 1\b", "rate_limit_per_day = 0", text)
    path.write_text(text, encoding="utf-8")
    settings = config.load(home)
    if settings.rate_limit_per_day != 0:
        raise SystemExit("could not lift the daily rate limit in creditcert.toml")
    sample.generate(
        settings.data_dir, settings.catalog, settings.issuer,
        subjects=subjects, records=records, seed=11, as_of=now().date() - timedelta(days=1),
    )  # fmt: skip
    City.open(home).keys.init(now() - timedelta(minutes=1))
    return home


def multipart(name: str, value: bytes, filename: str | None = None) -> bytes:
    """One multipart/form-data field, built once (the clients send the same bytes each time)."""
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if filename:
        head += "Content-Type: application/pdf\r\n"
    return head.encode() + b"\r\n" + value + f"\r\n--{BOUNDARY}--\r\n".encode()


# --- the server --------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen
    log: Path
    base: str = ""

    def tree(self) -> list[int]:
        """The serving process and its descendants (fork server, workers, resource tracker)."""
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def reset_peaks(self) -> None:
        for pid in self.tree():
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS

    def peaks_mib(self) -> tuple[float, float]:
        """VmHWM of the serving process, and summed over its tree, in MiB."""
        own, total = 0.0, 0.0
        for pid in self.tree():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            kib = int(match[1]) if match else 0
            total += kib / 1024
            if pid == self.process.pid:
                own = kib / 1024
        return own, total


def start_server(home: Path, workers: int, scratch: Path) -> Server:
    """`creditcert serve --port 0 --workers N`, stderr to a file (uvicorn's line names the port;
    the access log would otherwise need a reader in this process), ready when /readyz says so."""
    log = scratch / "serve.log"
    cmd = [sys.executable, "-m", "creditcert.cli", "--home", str(home), "serve",
           "--port", "0", "--workers", str(workers)]  # fmt: skip
    with open(log, "wb") as sink:
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=sink)
    server = Server(process, log)
    deadline = time.monotonic() + 180
    while not server.base:
        match = RUNNING.search(log.read_text(errors="replace"))
        if match:
            server.base = match[1]
        elif process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"creditcert serve did not start:\n{log.read_text()}")
        else:
            time.sleep(0.1)
    with httpx.Client(base_url=server.base, timeout=60) as client:
        while client.get("/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"creditcert serve never became ready:\n{log.read_text()}")
            time.sleep(0.2)
    return server


def stop_server(server: Server) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        server.process.kill()
        return server.process.wait()


class Cpu:
    """CPU seconds used from now on: by the serving process, its whole tree, and this process
    (the clients). On a shared machine CPU per request is steadier than wall time."""

    def __init__(self, server: Server):
        self.server = server
        self.start = self._now()

    def _now(self) -> tuple[float, float, float]:
        tick = os.sysconf("SC_CLK_TCK")
        own = tree = 0.0
        for pid in self.server.tree():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            tree += used
            if pid == self.server.process.pid:
                own = used
        me = resource.getrusage(resource.RUSAGE_SELF)
        return own, tree, me.ru_utime + me.ru_stime

    def per_request(self, requests: int) -> dict[str, float]:
        end = self._now()
        n = max(requests, 1)
        return {
            f"cpu_ms_{what}": (end[i] - self.start[i]) * 1000 / n
            for i, what in enumerate(("server", "tree", "client"))
        }


# --- load --------------------------------------------------------------------------------------


@dataclass
class Sample:
    """What one kind of client saw in one run."""

    latencies: list[float] = field(default_factory=list)  # seconds, successes and errors
    errors: int = 0
    first_error: str = ""
    numbers: list[str] = field(default_factory=list)
    start: float = 0.0
    end: float = 0.0

    def error(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what[:300]

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        n = len(lat)
        wall = self.end - self.start
        return {
            "requests": n,
            "errors": self.errors,
            "req_per_s": n / wall if wall > 0 else 0.0,
            "p50_ms": _rank(lat, 0.50) * 1000,
            "p95_ms": _rank(lat, 0.95) * 1000,
            "max_ms": (lat[-1] if lat else 0.0) * 1000,
            "first_error": self.first_error,
        }


def _rank(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not ordered:
        return 0.0
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def closed_loop(
    client: httpx.AsyncClient,
    call: Call,
    check: Callable[[httpx.Response], str | None],
    sample_: Sample,
    keep_going: Callable[[], bool],
) -> None:
    """One client: the next request as soon as the last is answered, while keep_going()."""
    while keep_going():
        start = time.perf_counter()
        try:
            response = await call(client)
        except httpx.HTTPError as exc:
            sample_.latencies.append(time.perf_counter() - start)
            sample_.error(f"{type(exc).__name__}: {exc}")
            continue
        sample_.latencies.append(time.perf_counter() - start)
        problem = check(response)
        if problem:
            sample_.error(problem)


def verify_check(response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if ACCEPTED not in response.content:
        verdict = response.json().get("verdict")
        return f"verdict {verdict!r}, expected 'accepted'"
    return None


def ok_check(response: httpx.Response) -> str | None:
    return None if response.status_code == 200 else f"HTTP {response.status_code}"


def client_for(base: str) -> httpx.AsyncClient:
    """One client, one HTTP/1.1 connection. Each simulated client has its own: with 50
    connections in one pool, httpcore scans the pool for every request (about 8 ms of this
    process's CPU per request at 50, against 2 ms at 1), and the benchmark measured itself. The
    TLS context (unused on http://, but made by every client: 70 ms each) is made once."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.AsyncClient(
        base_url=base, http1=True, http2=False, limits=limits, timeout=120, verify=_TLS
    )


def verify_call(body: bytes, secret: str) -> Call:
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Authorization": f"Bearer {secret}",
    }
    return lambda client: client.post("/api/v1/verify", content=body, headers=headers)


async def fixed_duration(
    base: str, clients: int, duration: float, call: Call, check, up: Callable[[], bool]
) -> Sample:
    """`clients` closed-loop clients for `duration` seconds (requests under way then finish),
    or until the server is no longer `up` (what failed before then is counted)."""
    sample_ = Sample()
    sessions = [client_for(base) for _ in range(clients)]
    try:
        sample_.start = time.perf_counter()
        deadline = sample_.start + duration
        await asyncio.gather(
            *(
                closed_loop(
                    s, call, check, sample_, lambda: time.perf_counter() < deadline and up()
                )
                for s in sessions
            )
        )
        sample_.end = time.perf_counter()
    finally:
        for session in sessions:
            await session.aclose()
    return sample_


async def issue_while_verifying(
    base: str,
    issue_secret: str,
    codes: list[str],
    issuers: int,
    duration: float,
    verifiers: int,
    verify_body: bytes,
    verify_secret: str,
    purpose: str,
) -> tuple[Sample, Sample]:
    """`issuers` clients issue for distinct subjects (each takes the next code) for `duration`
    seconds, while `verifiers` clients verify by QR text until the last issuance is answered."""
    issued, verified = Sample(), Sample()
    queue = iter(codes)
    headers = {"Authorization": f"Bearer {issue_secret}"}
    done = asyncio.Event()

    async def issuer(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            code = next(queue, None)
            if code is None:
                issued.error("ran out of subjects: raise --subjects or lower --issue-duration")
                return
            start = time.perf_counter()
            try:
                response = await client.post(
                    "/api/v1/reports",
                    json={"credit_code": code, "purpose": purpose},
                    headers=headers,
                )
            except httpx.HTTPError as exc:
                issued.latencies.append(time.perf_counter() - start)
                issued.error(f"{type(exc).__name__}: {exc}")
                continue
            issued.latencies.append(time.perf_counter() - start)
            if response.status_code != 201:
                issued.error(f"HTTP {response.status_code}: {response.text[:200]}")
            else:
                issued.numbers.append(response.json()["number"])

    async def issuers_then_stop(clients: list[httpx.AsyncClient]) -> None:
        await asyncio.gather(*(issuer(c) for c in clients))
        issued.end = time.perf_counter()
        done.set()

    call = verify_call(verify_body, verify_secret)
    issuing = [client_for(base) for _ in range(issuers)]
    verifying = [client_for(base) for _ in range(verifiers)]
    try:
        issued.start = verified.start = time.perf_counter()
        deadline = issued.start + duration
        await asyncio.gather(
            issuers_then_stop(issuing),
            *(
                closed_loop(c, call, verify_check, verified, lambda: not done.is_set())
                for c in verifying
            ),
        )
        verified.end = time.perf_counter()
    finally:
        for session in issuing + verifying:
            await session.aclose()
    return issued, verified


# --- the floors --------------------------------------------------------------------------------


def library_verify_ms(home: Path, source: bytes | str, seconds: float) -> dict:
    """Warm `City.verify` of one input in this process, one call after another."""
    city = City.open(home)
    city.verify(source, at=now())
    times: list[float] = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop or len(times) < 5:
        start = time.perf_counter()
        result = city.verify(source, at=now())
        times.append(time.perf_counter() - start)
        if result.verdict.value != "accepted":
            raise SystemExit(f"the library does not accept its own report: {result.verdict}")
    times.sort()
    return {"calls": len(times), "p50_ms": _rank(times, 0.5) * 1000}


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def aggregate(runs: list[dict], peaks: list[tuple[float, float]]) -> dict:
    keys = ("req_per_s", "p50_ms", "p95_ms", "max_ms")
    out = {k: spread([r[k] for r in runs]) for k in keys}
    for key in ("cpu_ms_server", "cpu_ms_tree", "cpu_ms_client"):
        if key in runs[0]:
            out[key] = statistics.median(r[key] for r in runs)
    out["requests"] = sum(r["requests"] for r in runs)
    out["errors"] = sum(r["errors"] for r in runs)
    out["first_error"] = next((r["first_error"] for r in runs if r["first_error"]), "")
    out["runs"] = len(runs)
    out["peak_rss_mib"] = {
        "server": max(p[0] for p in peaks),
        "tree": max(p[1] for p in peaks),
    }
    return out


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=3000)
    parser.add_argument("--records", type=int, default=15000)
    parser.add_argument("--runs", type=int, default=3, help="runs of scenarios 1 and 2")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run of 1 and 2")
    parser.add_argument("--qr-clients", type=int, default=50)
    parser.add_argument("--pdf-clients", type=int, default=10)
    parser.add_argument("--workers", type=int, default=default_workers(), help="serve --workers")
    parser.add_argument("--issue-clients", type=int, default=None, help="default: --workers")
    parser.add_argument("--issue-duration", type=float, default=30.0)
    parser.add_argument("--issue-verify-clients", type=int, default=10)
    parser.add_argument("--ceiling-reports", type=int, default=12, help="reports per batch run")
    parser.add_argument("--purpose", default="bidding")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    issuers = args.issue_clients or args.workers
    started = time.perf_counter()
    load_start = os.getloadavg()
    cores_start = cores_available(2)
    scratch = Path(tempfile.mkdtemp(prefix="service-load-"))
    results: dict[str, dict] = {}
    try:
        home = make_home(scratch, args.subjects, args.records)
        city = City.open(home)
        with city.store() as store:
            candidates = store.subject_codes(with_records=True, limit=None)
        random.Random(5).shuffle(candidates)
        request = city.request(as_of=now().date(), purpose=args.purpose)
        # a handful of reports to verify, issued through the library
        reports = [city.issue(code, request, at=now()) for code in candidates[:3]]
        qr_text, pdf = reports[-1].qr.text, reports[-1].pdf
        ceiling_codes = candidates[3 : 3 + args.ceiling_reports]
        warm_codes = candidates[3 + args.ceiling_reports : 3 + args.ceiling_reports + issuers]
        serve_codes = candidates[3 + args.ceiling_reports + issuers :]
        issue_secret = city.tokens.add("load-issue", ["issue"], at=now()).secret
        verify_secret = city.tokens.add("load-verify", ["verify"], at=now()).secret
        qr_body = multipart("qr", qr_text.encode("ascii"))
        pdf_body = multipart("file", pdf, "report.pdf")

        floors = {
            "library QR": library_verify_ms(home, qr_text, 2.0),
            "library PDF": library_verify_ms(home, pdf, 2.0),
        }
        ceilings = [batch_run(city, ceiling_codes, args.purpose, args.workers, scratch / "out")]

        servers = [start_server(home, args.workers, scratch)]
        deaths: list[str] = []  # servers that died under load, and in which scenario

        def alive(name: str) -> Server:
            """The running server; one that died is noted (its log's end to stderr) and
            replaced, so that the scenarios after it are still measured."""
            server = servers[-1]
            if server.process.poll() is not None:
                code = server.process.returncode
                deaths.append(f"{name}: creditcert serve died (exit code {code})")
                tail = server.log.read_text(errors="replace")[-3000:]
                print(f"{deaths[-1]}; its log ends:\n{tail}", file=sys.stderr)
                servers.append(start_server(home, args.workers, scratch))
            return servers[-1]

        try:

            def scenario(name: str, clients: int, runs: int, body: bytes | None, check) -> None:
                if body is None:
                    call: Call = lambda client: client.get("/healthz")  # noqa: E731
                else:
                    call = verify_call(body, verify_secret)
                server = alive(name)
                up = lambda: server.process.poll() is None  # noqa: E731
                asyncio.run(fixed_duration(server.base, clients, 1.0, call, check, up))  # warm
                samples, peaks = [], []
                for _ in range(runs):
                    server = alive(name)
                    server.reset_peaks()
                    cpu = Cpu(server)
                    got = asyncio.run(
                        fixed_duration(server.base, clients, args.duration, call, check, up)
                    )
                    used = cpu.per_request(len(got.latencies))
                    if not up():  # its CPU died with it: no figure
                        used = dict.fromkeys(used, float("nan"))
                    samples.append(got.summary() | used)
                    peaks.append(server.peaks_mib())
                alive(name)
                results[name] = aggregate(samples, peaks) | {"clients": clients}

            scenario("floor: GET /healthz", args.qr_clients, 1, None, ok_check)
            scenario("1. verify by QR text", args.qr_clients, args.runs, qr_body, verify_check)
            scenario("2. verify by PDF upload", args.pdf_clients, args.runs, pdf_body, verify_check)

            server = alive("before 3")
            # warm-up: one report per worker (a fresh worker's first render costs ~1 s more)
            asyncio.run(
                issue_while_verifying(
                    server.base, issue_secret, warm_codes, issuers, 0.01, 0, qr_body,
                    verify_secret, args.purpose,
                )
            )  # fmt: skip
            with city.registry(read_only=True) as registry:
                registered_before = registry.count()
            server.reset_peaks()
            cpu = Cpu(server)
            issued, verified = asyncio.run(
                issue_while_verifying(
                    server.base, issue_secret, serve_codes, issuers, args.issue_duration,
                    args.issue_verify_clients, qr_body, verify_secret, args.purpose,
                )
            )  # fmt: skip
            peak = server.peaks_mib()
            used = cpu.per_request(len(issued.latencies))
            alive("3. issuance while verifying")
            with city.registry(read_only=True) as registry:
                registered = registry.count() - registered_before
            numbers = issued.numbers
            results["3. issuance while verifying"] = aggregate(
                [issued.summary() | used], [peak]
            ) | {
                "clients": issuers,
                "issued": len(numbers),
                "distinct_numbers": len(set(numbers)),
                "registry_new_entries": registered,
            }
            results["3. verify by QR text meanwhile"] = aggregate([verified.summary()], [peak]) | {
                "clients": args.issue_verify_clients
            }
        finally:
            exit_code = stop_server(servers[-1])
        ceilings.append(batch_run(city, ceiling_codes, args.purpose, args.workers, scratch / "out"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    ceiling = {key: spread([c[key] for c in ceilings]) for key in ("end_to_end", "steady")}
    issuance = results["3. issuance while verifying"]
    ratio = issuance["req_per_s"]["median"] / ceiling["steady"]["median"]
    issue_ok = (
        issuance["errors"] == 0
        and issuance["issued"] == issuance["distinct_numbers"] == issuance["registry_new_entries"]
    )

    def clean(name: str) -> bool:  # no error and no server death: the latencies mean something
        return results[name]["errors"] == 0 and not any(d.startswith(name) for d in deaths)

    p95 = {name: r["p95_ms"]["median"] for name, r in results.items()}
    verdicts = {
        "1. verify by QR text": clean("1. verify by QR text") and p95["1. verify by QR text"] <= 20,
        "2. verify by PDF upload": (
            clean("2. verify by PDF upload") and p95["2. verify by PDF upload"] <= 400
        ),
        "3. issuance while verifying": ratio >= 0.85 and issue_ok,
        "3. verify by QR text meanwhile": (
            clean("3. verify by QR text meanwhile") and p95["3. verify by QR text meanwhile"] < 100
        ),
    }
    load_end = os.getloadavg()
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores ({_cpu_model()}), "
        f"Python {platform.python_version()}, {date.today()}; shared with other work: load average "
        f"{load_start[0]:.1f} / {load_start[1]:.1f} / {load_start[2]:.1f} at start, "
        f"{load_end[0]:.1f} / {load_end[1]:.1f} / {load_end[2]:.1f} at end; two busy loops got "
        f"{cores_start:.1f} cores at start, {cores_available(2):.1f} at end"
    )
    data = (
        f"{len(qr_text)}-character QR text, {len(pdf):,}-byte PDF; "
        f"sample city of {args.subjects:,} subjects / {args.records:,} records; reports of purpose "
        f"{args.purpose}; server --workers {args.workers}; {args.runs} runs of {args.duration:g} s "
        f"for 1 and 2, one of {args.issue_duration:g} s for 3; whole benchmark "
        f"{time.perf_counter() - started:.0f} s; server exit code {exit_code}"
    )
    report = {
        "format": "creditcert.bench-service-load/1",
        "machine": machine,
        "data": data,
        "results": results,
        "floors_library_verify": floors,
        "batch_ceiling_reports_per_s": ceiling,
        "issuance_vs_ceiling": ratio,
        "targets_met": verdicts,
        "server_deaths": deaths,
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print_table(report)
    if any(r["errors"] for r in results.values()) or not issue_ok or deaths:
        raise SystemExit("errors under load: see the table")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def triple(s: dict[str, float], digits: int = 1) -> str:
    return " / ".join(f"{s[k]:,.{digits}f}" for k in ("min", "median", "max"))


def print_table(report: dict) -> None:
    print(f"\nmachine: {report['machine']}\ndata: {report['data']}\n")
    print(
        "| scenario | clients | requests | errors | req/s (min / median / max) | p50 ms | p95 ms "
        "| max ms | CPU ms/request server / client | peak RSS MiB server / tree | target |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    met = report["targets_met"]
    for name, r in report["results"].items():
        target = {
            "1. verify by QR text": "p95 <= 20 ms",
            "2. verify by PDF upload": "p95 <= 400 ms",
            "3. issuance while verifying": "within 15 % of the batch ceiling",
            "3. verify by QR text meanwhile": "p95 < 100 ms",
        }.get(name, "")
        if name in met:
            target += " (met)" if met[name] else " (**missed**)"
        rate = triple(r["req_per_s"], 2 if name.startswith("3. issuance") else 1)
        extra = ""
        if "issued" in r:
            extra = (
                f"; {r['issued']} issued, {r['distinct_numbers']} distinct numbers, "
                f"{r['registry_new_entries']} new in the registry"
            )
        peak = r["peak_rss_mib"]
        cpu = "(with the row above)"
        if "cpu_ms_server" in r:
            server = r["cpu_ms_tree" if "issued" in r else "cpu_ms_server"]
            cpu = f"{server:,.1f} / {r['cpu_ms_client']:.1f}"
        print(
            f"| {name}{extra} | {r['clients']} | {r['requests']:,} | {r['errors']} | {rate} "
            f"| {triple(r['p50_ms'])} | {triple(r['p95_ms'])} | {triple(r['max_ms'])} "
            f"| {cpu} | {peak['server']:.0f} / {peak['tree']:.0f} | {target} |"
        )
    c = report["batch_ceiling_reports_per_s"]
    print(
        f"\nbatch ceiling (run_batch, same workers, before the server and after it): steady "
        f"{triple(c['steady'], 2)} reports/s, end to end {triple(c['end_to_end'], 2)}; service "
        f"issuance / steady ceiling = {report['issuance_vs_ceiling']:.2f}"
    )
    for what, f in report["floors_library_verify"].items():
        print(f"floor, {what}: warm City.verify in one process, p50 {f['p50_ms']:.2f} ms")
    for death in report["server_deaths"]:
        print(f"**{death}** (restarted for the scenarios after it)")
    for name, r in report["results"].items():
        if r["first_error"]:
            print(f"first error in {name}: {r['first_error']}")


if __name__ == "__main__":  # the batch ceiling's workers import this file: start nothing then
    main()
