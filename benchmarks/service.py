"""Load on the service: requests per second and p50/p99 latency, with wrk (a load generator written in C, so
that the client takes little of the machine's CPU from the server), against 127.0.0.1 only, bounded runs.

apt-get install wrk, then
python benchmarks/service.py [--duration 5] [--workers 1 2] [--concurrency 1 16 64]

For each number of uvicorn workers it starts `policyhistory serve` on a fresh store (the example tenants
loaded) and measures POST /v1/rate (the September 2018 France call), POST /v1/rate/batch (100 calls of one
tenant, rated in start order with pools; with their trace, as by default, and with "trace": false) and
GET /v1/policies, at each concurrency, then prints a Markdown table. Beside wrk's figures it counts the CPU
time the server's processes spent per request (from /proc), a figure that a machine shared with other work
disturbs much less than requests per second, wrk's own CPU per request (wrk runs 1 thread at
concurrency 1, 2 above), and the busiest process's share of the server's CPU (with two workers, 0.5 when
both got the same work, 1.0 when one got it all), and how many cores the machine's other processes took
meanwhile (on a shared machine, what the server could not have).
benchmarks/README.md has figures and how they were taken.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "benchmark-token"
CALL = {"call_id": "c1", "tenant_id": "contoso", "start": "2018-09-15T09:00:00Z", "duration_seconds": 900,
        "call_type": "conf_out", "destination": "+33142685300", "organizer_usage_location": "US",
        "organizer_licenses": "MCOMEETADD;MCOPSTNC"}
BATCH = [{**CALL, "call_id": f"c{index}", "start": f"2018-09-{1 + index % 28:02d}T{index % 24:02d}:00:00Z",
          "duration_seconds": 60 + index} for index in range(100)]
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(folder: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    db = folder / f"bench-{workers}.db"
    subprocess.run([sys.executable, "-m", "policyhistory.cli", "--db", str(db), "load", "--tenants",
                    str(ROOT / "examples" / "tenants.csv"), "--licenses", str(ROOT / "examples" / "licenses.csv")],
                   check=True, capture_output=True)
    port = free_port()
    env = {**os.environ, "POLICYHISTORY_TOKEN": TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "policyhistory.cli", "--db", str(db), "serve", "--port",
                                str(port), "--workers", str(workers)], env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/verify", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        raise SystemExit("the server did not start")
    # Each worker opens its store lazily at startup; touch every route a few times before measuring.
    for _ in range(20 * workers):
        httpx.post(url + "/v1/rate", json={"call": CALL}, timeout=10).raise_for_status()
        httpx.post(url + "/v1/rate/batch", json={"calls": BATCH}, timeout=10).raise_for_status()
    return process, url


def lua(folder: Path, name: str, body: object) -> Path:
    script = folder / f"{name}.lua"
    text = json.dumps(body).replace("\\", "\\\\").replace('"', '\\"')
    script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = "{text}"\n')
    return script


def latency_ms(text: str, percent: str) -> float:
    found = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    return float(found.group(1)) * _UNITS[found.group(2)] if found else float("nan")


def group_cpu(group: int) -> dict[int, float]:
    """CPU time (user + system, seconds) of each live process of a process group: the server and its workers."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def machine_busy_seconds() -> float:
    """CPU time every process of the machine spent (all cores: user, nice, system, irq, softirq, steal)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, script: Path | None, connections: int, duration: int, group: int) -> dict[str, float]:
    command = ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    first = group_cpu(group)
    before = os.times()
    busy = machine_busy_seconds()
    out = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    busy = machine_busy_seconds() - busy
    after = os.times()
    client = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    spent = [seconds - first.get(pid, 0.0) for pid, seconds in group_cpu(group).items()]
    cpu = sum(spent)
    requests = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    done = int(requests.group(1)) if requests else 0
    return {"rps": float(rate.group(1)) if rate else float("nan"), "p50": latency_ms(out, "50"),
            "cpu_ms": 1000 * cpu / done if done else float("nan"),
            "client_cpu_ms": 1000 * client / done if done else float("nan"),
            "busiest": max(spent) / cpu if cpu else float("nan"),
            "others": max(0.0, busy - cpu - client) / duration,
            "p99": latency_ms(out, "99"), "errors": float(errors.group(1)) if errors else 0.0}


def median(results: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds (the middle one of an odd number; the lower middle else)."""
    return {name: sorted(r[name] for r in results)[(len(results) - 1) // 2] for name in results[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each figure this many times, the servers taken in turn (one order, then the "
                             "other), and report the medians: ratios between worker counts compare runs taken "
                             "seconds apart")
    parser.add_argument("--routes", nargs="+", choices=["rate", "batch", "batch-untraced", "policies"],
                        default=["rate", "batch", "batch-untraced", "policies"])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")
    folder = Path(tempfile.mkdtemp(prefix="policyhistory-bench-"))
    scripts = {"rate": ("POST /v1/rate", "/v1/rate", lua(folder, "rate", {"call": CALL}), 1),
               "batch": ("POST /v1/rate/batch (100 calls)", "/v1/rate/batch",
                         lua(folder, "batch", {"calls": BATCH}), 100),
               "batch-untraced": ("POST /v1/rate/batch (100 calls, no trace)", "/v1/rate/batch",
                                  lua(folder, "batch-untraced", {"calls": BATCH, "trace": False}), 100),
               "policies": ("GET /v1/policies", "/v1/policies?as_of=2018-09-15", None, 1)}
    # Every server is started first (an idle one takes no CPU), so that the rounds can alternate between them.
    servers: dict[int, tuple[subprocess.Popen[bytes], str]] = {}
    rows = []
    try:
        for workers in args.workers:
            (folder / str(workers)).mkdir()
            servers[workers] = start_server(folder / str(workers), workers)
        for name in args.routes:
            route, path, script, calls = scripts[name]
            for connections in args.concurrency:
                results: dict[int, list[dict[str, float]]] = {workers: [] for workers in args.workers}
                for index in range(args.rounds):
                    for workers in args.workers if index % 2 == 0 else args.workers[::-1]:
                        process, url = servers[workers]
                        result = wrk(url + path, script, connections, args.duration, process.pid)
                        results[workers].append(result)
                        print(f"{route} workers={workers} c={connections}: {result['rps']:.0f} req/s, "
                              f"p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms, "
                              f"server CPU {result['cpu_ms']:.3f} ms a request, wrk {result['client_cpu_ms']:.3f} ms, "
                              f"busiest process {result['busiest']:.2f} of the server's CPU, "
                              f"other processes {result['others']:.2f} cores"
                              + (f", {result['errors']:.0f} errors" if result["errors"] else ""), file=sys.stderr)
                for workers in args.workers:
                    rows.append((route, workers, connections, median(results[workers]), calls))
    finally:
        for process, _ in servers.values():
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    print("| route | workers | concurrency | req/s | calls/s | p50 ms | p99 ms | server CPU ms/request | "
          "req/s per CPU second | wrk CPU ms/request | busiest process's share | other processes, cores |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for route, workers, connections, result, calls in rows:
        print(f"| {route} | {workers} | {connections} | {result['rps']:.0f} | {result['rps'] * calls:.0f} | "
              f"{result['p50']:.2f} | {result['p99']:.2f} | {result['cpu_ms']:.3f} | {1000 / result['cpu_ms']:.0f} | "
              f"{result['client_cpu_ms']:.3f} | {result['busiest']:.2f} | {result['others']:.2f} |")
    if len(args.workers) > 1:
        first = args.workers[0]
        base = {(route, connections): result["rps"] for route, workers, connections, result, _ in rows
                if workers == first}
        print(f"\nrequests/s against {first} worker(s), median of {args.rounds} alternated round(s):")
        for route, workers, connections, result, _ in rows:
            if workers != first:
                ratio = result["rps"] / base[route, connections]
                print(f"- {route}, concurrency {connections}: {workers} workers {ratio:.2f} x")


if __name__ == "__main__":
    main()
