#!/usr/bin/env python3
"""Helpers for bench/run.sh: set up stacks over Wharf's API, send webhooks at a fixed rate (with
bench/http/httpburst, in C, which also sends the scale round's all-at-once burst), wait for jobs to
end, and turn the timestamps of client, fleet and store into latency figures.

Standard library only. Every network call goes to the URL given (127.0.0.1 in the benchmarks).

    wharfbench.py setup      --url U --token-file F --prefix fleet --first 0 --envs N --stacks-per-env M --out PATHS
    wharfbench.py wait-idle  --url U --token-file F [--timeout S]
    wharfbench.py paced      --url U --paths PATHS --rate R --duration S [--conns C] --out LOG --sender HTTPBURST
    wharfbench.py client-summary --client LOG     (the summary of a log written by bench/http/httpburst)
    wharfbench.py sync-probe --dir D --seconds S [--interval-ms 5]   (4-KiB write + fdatasync latency on D's file system)
    wharfbench.py dispatch   --client LOG --fleet FLEETLOG... --db wharf.db --out JSON [--label L]
    wharfbench.py round      --client LOG --fleet FLEETLOG... --db wharf.db --out JSON [--timeout S]
    wharfbench.py jobs-since --db wharf.db --since T --until T
    wharfbench.py threads    --pid P [--since SNAPSHOT]   (a process's threads: CPU and sleeps, or since a snapshot)
"""
import argparse
import http.client
import json
import math
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

COMPOSE = "services:\n  web:\n    image: 127.0.0.1:5000/bench/web:${TAG:-1}\n"
FINAL = ("succeeded", "failed", "rolled_back")


def split_url(url):
    parts = urllib.parse.urlsplit(url)
    return parts.hostname, parts.port or 80


class API:
    """A keep-alive JSON client of the management API (one per thread)."""

    def __init__(self, url, token):
        self.host, self.port = split_url(url)
        self.token = token
        self.conn = None

    def call(self, method, path, body=None, expect=(200, 201, 202, 204)):
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 2 or method != "GET":
                    raise
                time.sleep(0.2)
        if response.status not in expect:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}: {data[:300]!r}")
        return json.loads(data) if data else None


def read_token(path):
    with open(path) as f:
        return f.read().strip()


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary_ms(values):
    values = sorted(values)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50) * 1000, 3),
        "p90": round(percentile(values, 90) * 1000, 3),
        "p99": round(percentile(values, 99) * 1000, 3),
        "max": round(values[-1] * 1000, 3),
        "mean": round(sum(values) / len(values) * 1000, 3),
    }


# ---------------------------------------------------------------------------
# setup

def cmd_setup(args):
    token = read_token(args.token_file)
    api = API(args.url, token)
    environments = api.call("GET", "/api/environments")["environments"]
    by_name = {e["name"]: e["id"] for e in environments}
    work = []
    for i in range(args.first, args.first + args.envs):
        name = f"{args.prefix}-{i}"
        if name not in by_name:
            sys.exit(f"setup: environment {name} does not exist (start the fleet first)")
        for j in range(args.stacks_per_env):
            work.append((by_name[name], f"{args.stack_prefix}{j}"))
    results = [None] * len(work)
    errors = []
    lock = threading.Lock()
    cursor = [0]
    limit = [min(len(work), args.batch or len(work))]
    batch_done = threading.Condition(lock)
    finished = [0]

    def worker():
        client = API(args.url, token)
        while True:
            with lock:
                # Creating a stack queues its first deploy; in batches, the queue drains between them,
                # so that setting up does not overload the server being measured.
                while cursor[0] >= limit[0] and cursor[0] < len(work) and not errors:
                    batch_done.wait()
                index = cursor[0]
                cursor[0] += 1
            if index >= len(work) or errors:
                with lock:
                    batch_done.notify_all()
                return
            env_id, name = work[index]
            try:
                stack = client.call("POST", "/api/stacks", {"name": name, "environmentId": env_id, "compose": args.compose})["stack"]
                hook = client.call("POST", f"/api/stacks/{stack['id']}/webhook")
                results[index] = urllib.parse.urlsplit(hook["url"]).path
            except Exception as error:  # noqa: BLE001 - reported and fatal
                with lock:
                    errors.append(f"{name} on {env_id}: {error}")
                    batch_done.notify_all()
                continue
            with lock:
                finished[0] += 1
                if finished[0] == limit[0] and limit[0] < len(work):
                    wait_idle(client, 300)
                    limit[0] = min(len(work), limit[0] + args.batch)
                    batch_done.notify_all()

    started = time.time()
    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("setup: " + errors[0])
    with open(args.out, "w") as f:
        for path in results:
            f.write(path + "\n")
    print(json.dumps({"stacks": len(results), "seconds": round(time.time() - started, 2)}))


def open_jobs(api):
    return sum(len(api.call("GET", f"/api/jobs?state={s}&limit=1")["jobs"]) for s in ("queued", "dispatched", "running"))


def wait_idle(api, timeout):
    """Waits until no job is queued, dispatched or running; returns (idle, seconds waited)."""
    started = time.time()
    while open_jobs(api):
        if time.time() - started > timeout:
            return False, time.time() - started
        time.sleep(0.2)
    return True, time.time() - started


def cmd_wait_idle(args):
    idle, waited = wait_idle(API(args.url, read_token(args.token_file)), args.timeout)
    print(json.dumps({"idle": idle, "waited": round(waited, 2)}))
    if not idle:
        sys.exit(1)


# ---------------------------------------------------------------------------
# webhook senders

def load_paths(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def client_summary(start, records):
    done = [r for r in records if r]
    statuses = {}
    for r in done:
        statuses[r[3]] = statuses.get(r[3], 0) + 1
    last = max((r[2] for r in done), default=start)
    return {
        "requests": len(done), "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": round(last - start, 3), "ratePerSecond": round(len(done) / (last - start), 1) if last > start else None,
        "httpLatencyMs": summary_ms([r[2] - r[1] for r in done]),
        "lateStartsMs": summary_ms([max(0.0, r[1] - r[0]) for r in done]),
    }


def cmd_paced(args):
    """Sends rate × duration calls, cycling through the paths from --offset, with bench/http/httpburst
    in its paced mode (call i due at start + i/rate), and prints the client's summary."""
    paths = load_paths(args.paths)
    if not paths:
        sys.exit(f"wharfbench paced: {args.paths} has no path")
    total = int(args.rate * args.duration)
    chosen = args.out + ".paths"
    with open(chosen, "w") as f:
        for i in range(total):
            f.write(paths[(args.offset + i) % len(paths)] + "\n")
    sent = subprocess.run([args.sender, args.url, chosen, str(args.conns), args.out, repr(float(args.rate))])
    if sent.returncode != 0:
        sys.exit(f"wharfbench paced: {args.sender} exited with status {sent.returncode}")
    print(json.dumps(read_client_summary(args.out)))


def read_client_summary(path):
    lines = list(read_jsonl(path))
    start = next(r["at"] for r in lines if r.get("event") == "start")
    records = [(r["scheduled"], r["sent"], r["accepted"], r["status"], r["job"]) for r in lines if "job" in r]
    return client_summary(start, records)


def cmd_client_summary(args):
    """Summarises a client log written by bench/http/httpburst."""
    print(json.dumps(read_client_summary(args.client)))


def cmd_sync_probe(args):
    """What one commit's sync costs on this file system while the run goes on: overwrites a 4-KiB
    page of a preallocated file and fdatasync()s it every --interval-ms for --seconds (as SQLite's
    WAL commit does with `synchronous = FULL`), and prints the latency figures."""
    path = os.path.join(args.dir, "sync-probe.bin")
    page = b"w" * 4096
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.pwrite(fd, b"\0" * 16 * 4096, 0)
        os.fsync(fd)
        latencies = []
        end = time.monotonic() + args.seconds
        i = 0
        while time.monotonic() < end:
            os.pwrite(fd, page, (i % 16) * 4096)
            t = time.perf_counter()
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - t)
            i += 1
            time.sleep(args.interval_ms / 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    print(json.dumps(summary_ms(latencies)))


# ---------------------------------------------------------------------------
# analysis

def read_jsonl(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    pass  # a line cut short by a kill


def fleet_jobs(paths):
    jobs = {}
    events = []
    for path in paths:
        for record in read_jsonl(path):
            if "job" in record:
                # The first line counts: a job the server sends again after its result was acknowledged
                # (its resend timer fired while the acknowledgement was queued) is answered again.
                jobs.setdefault(record["job"], record)
            else:
                events.append(record)
    return jobs, events


def store_jobs(db, ids):
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute("SELECT id, state, created_at, finished_at, coalesced FROM job").fetchall()
    finally:
        connection.close()
    wanted = set(ids)
    return {row[0]: {"state": row[1], "created": row[2], "finished": row[3], "coalesced": row[4]} for row in rows if row[0] in wanted}


def cmd_dispatch(args):
    client = [r for r in read_jsonl(args.client) if "job" in r]
    fleet, _ = fleet_jobs(args.fleet)
    ids = [r["job"] for r in client if r["job"]]
    store = store_jobs(args.db, ids)
    seen = set()
    hold_after_202, hold_after_send, final_after_result, ack_after_result, http = [], [], [], [], []
    missing = 0
    for r in client:
        job = r["job"]
        http.append(r["accepted"] - r["sent"])
        if not job or job in seen:
            continue  # a call that joined a job already counted (coalesced)
        seen.add(job)
        f = fleet.get(job)
        s = store.get(job)
        if not f or not s or s["state"] not in FINAL:
            missing += 1
            continue
        hold_after_202.append(f["received"] - r["accepted"])
        hold_after_send.append(f["received"] - r["sent"])
        ack_after_result.append(f["resultAcked"] - f["resultSent"])
        if s["finished"] is not None:
            final_after_result.append(s["finished"] - f["resultSent"])
    result = {
        "label": args.label, "calls": len(client), "jobs": len(seen), "notFinal": missing,
        "statuses": {},
        "httpMs": summary_ms(http),
        "holdAfter202Ms": summary_ms(hold_after_202),
        "holdAfterSendMs": summary_ms(hold_after_send),
        "finalAfterResultMs": summary_ms(final_after_result),
        "ackAfterResultMs": summary_ms(ack_after_result),
    }
    for r in client:
        result["statuses"][str(r["status"])] = result["statuses"].get(str(r["status"]), 0) + 1
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))


def cmd_round(args):
    client_records = list(read_jsonl(args.client))
    start = next(r["at"] for r in client_records if r.get("event") == "start")
    client = [r for r in client_records if "job" in r]
    ids = {r["job"] for r in client if r["job"]}
    deadline = time.time() + args.timeout
    while True:
        fleet, _ = fleet_jobs(args.fleet)
        acked = [fleet[j] for j in ids if j in fleet]
        if len(acked) == len(ids) or time.time() > deadline:
            break
        time.sleep(0.1)
    store = store_jobs(args.db, ids)
    final = [j for j in ids if store.get(j, {}).get("state") in FINAL]
    statuses = {}
    for r in client:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    result = {
        "calls": len(client), "statuses": statuses, "jobs": len(ids),
        "jobsFinal": len(final), "jobsLost": len(ids) - len(final),
        "intakeSeconds": round(max(r["accepted"] for r in client) - start, 3) if client else None,
        "allHeldSeconds": round(max(f["received"] for f in acked) - start, 3) if acked else None,
        "allFinalSeconds": round(max(f["resultAcked"] for f in acked) - start, 3) if len(acked) == len(ids) and acked else None,
        "allFinalInStoreSeconds": round(max(store[j]["finished"] for j in final) - start, 3) if final else None,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))


def cmd_jobs_since(args):
    connection = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True, timeout=30)
    try:
        row = connection.execute(
            "SELECT COUNT(*), COALESCE(SUM(coalesced), 0), "
            "COALESCE(SUM(CASE WHEN state IN ('succeeded','failed','rolled_back') THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN state = 'succeeded' THEN 1 ELSE 0 END), 0) "
            "FROM job WHERE created_at >= ? AND created_at <= ?", (args.since, args.until)).fetchone()
    finally:
        connection.close()
    print(json.dumps({"jobs": row[0], "coalescedCalls": row[1], "final": row[2], "succeeded": row[3]}))


def thread_snapshot(pid):
    """Every thread of `pid`: name, CPU nanoseconds (schedstat) and context switches."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        base = f"/proc/{pid}/task/{tid}"
        try:
            name = open(f"{base}/comm").read().strip()
            # Nanoseconds run, and waited runnable for a CPU (schedstat's first two fields).
            ns, queued_ns = map(int, open(f"{base}/schedstat").read().split()[:2])
            status = dict(line.split(":", 1) for line in open(f"{base}/status") if ":" in line)
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
        threads[tid] = {"name": name, "ns": ns, "queuedNs": queued_ns, "voluntary": int(status["voluntary_ctxt_switches"]),
                        "involuntary": int(status["nonvoluntary_ctxt_switches"])}
    # The whole machine's CPU time (jiffies): user nice system idle iowait irq softirq steal.
    machine = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return {"at": time.time(), "threads": threads, "machine": machine}


def cmd_threads(args):
    now = thread_snapshot(args.pid)
    if not args.since:
        print(json.dumps(now))
        return
    before = json.load(open(args.since))
    seconds = now["at"] - before["at"]
    groups = {}
    for tid, t in now["threads"].items():
        # A thread started since the snapshot counts from zero; one that ended since is not seen.
        b = before["threads"].get(tid)
        if b is not None and b["name"] != t["name"]:
            b = None
        cpu = (t["ns"] - (b["ns"] if b else 0)) / 1e9
        queued = (t["queuedNs"] - (b["queuedNs"] if b else 0)) / 1e9
        voluntary = t["voluntary"] - (b["voluntary"] if b else 0)
        involuntary = t["involuntary"] - (b["involuntary"] if b else 0)
        g = groups.setdefault(t["name"], {"name": t["name"], "threads": 0, "cpuSeconds": 0.0, "busiestCpuSeconds": 0.0,
                                          "busiestQueuedSeconds": 0.0, "queuedSeconds": 0.0, "voluntary": 0, "involuntary": 0})
        g["threads"] += 1
        g["cpuSeconds"] += cpu
        if cpu >= g["busiestCpuSeconds"]:
            g["busiestCpuSeconds"], g["busiestQueuedSeconds"] = cpu, queued
        g["queuedSeconds"] += queued
        g["voluntary"] += voluntary
        g["involuntary"] += involuntary
    rows = sorted(groups.values(), key=lambda g: -g["cpuSeconds"])
    for g in rows:
        g["cpuSeconds"] = round(g["cpuSeconds"], 3)
        g["queuedSeconds"] = round(g["queuedSeconds"], 3)
        # How much of the interval the group's busiest thread ran, and waited for a CPU while it could
        # have run: near 1 together, that thread is a bottleneck (the second part: the machine's CPUs).
        g["busiestShare"] = round(g.pop("busiestCpuSeconds") / seconds, 3) if seconds > 0 else None
        g["busiestQueuedShare"] = round(g.pop("busiestQueuedSeconds") / seconds, 3) if seconds > 0 else None
    # How busy the whole machine was (every process, ours or not), and how much the hypervisor stole.
    delta = [b - a for a, b in zip(before["machine"], now["machine"])]
    total = sum(delta) or 1
    machine = {"busyShare": round(1 - (delta[3] + delta[4]) / total, 3), "stealShare": round(delta[7] / total, 3)}
    print(json.dumps({"seconds": round(seconds, 3), "machine": machine,
                      "groups": [g for g in rows if g["cpuSeconds"] > 0 or g["voluntary"] > 0]}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("setup")
    p.add_argument("--url", required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--prefix", default="fleet")
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--envs", type=int, required=True)
    p.add_argument("--stacks-per-env", type=int, default=1)
    p.add_argument("--stack-prefix", default="s")
    p.add_argument("--compose", default=COMPOSE)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--batch", type=int, default=0, help="wait for every job to end after each BATCH stacks")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("wait-idle")
    p.add_argument("--url", required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--timeout", type=float, default=120)
    p.set_defaults(func=cmd_wait_idle)

    p = sub.add_parser("paced")
    p.add_argument("--url", required=True)
    p.add_argument("--paths", required=True)
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--out", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--sender", required=True, help="bench/http/httpburst, built")
    p.set_defaults(func=cmd_paced)

    p = sub.add_parser("sync-probe")
    p.add_argument("--dir", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--interval-ms", type=float, default=5)
    p.set_defaults(func=cmd_sync_probe)

    p = sub.add_parser("client-summary")
    p.add_argument("--client", required=True)
    p.set_defaults(func=cmd_client_summary)

    p = sub.add_parser("dispatch")
    p.add_argument("--client", required=True)
    p.add_argument("--fleet", nargs="+", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--label", default="")
    p.set_defaults(func=cmd_dispatch)

    p = sub.add_parser("round")
    p.add_argument("--client", required=True)
    p.add_argument("--fleet", nargs="+", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--timeout", type=float, default=60)
    p.set_defaults(func=cmd_round)

    p = sub.add_parser("jobs-since")
    p.add_argument("--db", required=True)
    p.add_argument("--since", type=float, required=True)
    p.add_argument("--until", type=float, required=True)
    p.set_defaults(func=cmd_jobs_since)

    p = sub.add_parser("threads")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--since", help="a snapshot this command printed before: print the difference by thread name")
    p.set_defaults(func=cmd_threads)

    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
