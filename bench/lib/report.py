#!/usr/bin/env python3
"""Builds bench/results/latest.{json,md} and the charts from bench/results/parts/*.json.

    report.py RESULTS_DIR TOTAL_SECONDS PART...

Every figure is printed next to the baseline measured in the same run (same part file), with
the ratio. Parts not run this time keep their last result, marked with the date they were measured.
"""
import json
import os
import subprocess
import sys
import time

PART_ORDER = ["intake", "dispatch", "scale", "footprint", "redeploy"]
DISPATCH_CASES = [
    ("agents1-rate100", "1 agent, 100/s"),
    ("agents1-rate1000", "1 agent, 1,000/s"),
    ("agents1000-rate100", "1,000 agents, 100/s"),
    ("agents1000-rate1000", "1,000 agents, 1,000/s"),
]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ratio(value, baseline):
    if value is None or not baseline:
        return None
    return round(value / baseline, 3)


def fmt(value, digits=1):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def fmt_ratio(value):
    return "—" if value is None else f"{value:.2f}×"


# Thread names as the kernel keeps them (15 characters; libdispatch's are cut from the front).
THREAD_LABELS = {
    "-qos.overcommit": "GRDB's queues (dispatch overcommit pool: the writer and the readers)",
    "oot.default-qos": "Swift's cooperative pool",
    "ZMQbg/IO/0": "libzmq's I/O thread",
    "wharf-router": "the ROUTER socket's thread",
    "zmq-zap": "the ZAP handler",
}


def thread_label(name):
    if name.startswith("NIO-SGLTN"):
        return f"an event loop ({name})"
    return THREAD_LABELS.get(name, name)


def thread_line(what, threads, per, unit, extra=""):
    """One line: the server's threads over a measured run (`wharfbench.py threads --since`), by name,
    in CPU µs and sleeps per `unit` (`per` of them in the run)."""
    if not threads or not threads.get("groups") or not per:
        return None
    parts = [f"{thread_label(g['name'])} ×{g['threads']}: {g['cpuSeconds'] / per * 1e6:.0f} µs and "
             f"{g['voluntary'] / per:.1f} sleeps a {unit}, busiest thread running {g['busiestShare'] * 100:.0f} % of the time"
             + (f" and waiting for a CPU {g['busiestQueuedShare'] * 100:.0f} %" if g.get("busiestQueuedShare") is not None else "")
             for g in threads["groups"][:6]]
    m = threads.get("machine") or {}
    machine = (f" The whole machine was {m['busyShare'] * 100:.0f} % busy meanwhile ({m['stealShare'] * 100:.0f} % stolen by the "
               f"hypervisor).") if m else ""
    return (f"- The server's threads {what} ({threads['seconds']} s; by name, the six busiest): " + "; ".join(parts) + "."
            + extra + machine + " A thread running near 100 % of the time would be what the run waits for; one that "
            "waits long for a CPU, the machine's vCPUs.")


class Report:
    def __init__(self, results, total_seconds, ran):
        self.results = results
        self.total_seconds = total_seconds
        self.ran = ran
        self.parts = {name: load(os.path.join(results, "parts", f"{name}.json")) for name in PART_ORDER}
        self.machine = load(os.path.join(results, "parts", "machine.json")) or {}
        self.probe = load(os.path.join(results, "parts", "probe.json")) or {}
        self.figures = []
        self.goals = []
        self.md = []

    # -- helpers --------------------------------------------------------------

    def figure(self, part, name, value, unit, baseline_name, baseline, better="higher"):
        r = ratio(value, baseline)
        self.figures.append({"part": part, "name": name, "value": value, "unit": unit,
                             "baseline": {"name": baseline_name, "value": baseline}, "ratio": r, "better": better})
        return r

    def goal(self, number, text, met, value, target, margin):
        self.goals.append({"goal": number, "text": text, "met": bool(met), "value": value, "target": target, "margin": margin})

    def table(self, header, rows):
        self.md.append("| " + " | ".join(header) + " |")
        self.md.append("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            self.md.append("| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in row) + " |")
        self.md.append("")

    # -- parts ------------------------------------------------------------------

    def intake(self, p):
        runs = p["runs"]
        hb = runs["hummingbird"]["requestsPerSecond"]
        nginx = runs["nginx"]["requestsPerSecond"]
        webhook = runs["webhook"]["requestsPerSecond"]
        hot = runs["wharf-hot"]
        rr = runs["wharf-roundrobin"]
        self.md.append("## 1. Webhook intake (wrk, 64 connections, 2 threads)\n")
        rows = []
        for name, label in (("nginx", "nginx `return 202`"), ("hummingbird", "bare Hummingbird 2.28.1, 202"),
                            ("webhook", "adnanh/webhook, /bin/true"), ("wharf-hot", "**Wharf, one hot stack**"),
                            ("wharf-roundrobin", "**Wharf, 10,000 stacks round-robin**"),
                            ("wharf-hot-away", "Wharf, one hot stack, its agent away (no job runs; not a goal)")):
            run = runs.get(name)
            if run is None:
                continue
            rows.append([label, run["requestsPerSecond"], run["p50Ms"], run["p99Ms"], run["non2xx"] + run["socketErrors"],
                         run.get("serverCpuPerRequestMicros"), run.get("wrkCpuPerRequestMicros"),
                         run.get("fleetCpuPerRequestMicros"), fmt_ratio(ratio(run["requestsPerSecond"], hb)),
                         fmt_ratio(ratio(run["requestsPerSecond"], webhook))])
        self.table(["server", "req/s", "p50 ms", "p99 ms", "errors + non-2xx", "server CPU µs/req", "wrk CPU µs/req",
                    "fleet CPU µs/req", "vs bare HB", "vs webhook"], rows)
        self.md.append("CPU columns: user + system time over the measured seconds, per request, of the server (with its "
                       "children), of wrk itself and of the simulated fleet (Wharf's runs; blank where there is none). All "
                       "three share the machine's vCPUs.\n")
        for name in ("wharf-hot", "wharf-roundrobin"):
            run = runs[name]
            jobs = run.get("jobs", {})
            drain = run.get("drain", {})
            self.md.append(f"- {name}: {fmt(run['requests'])} calls → {fmt(jobs.get('jobs'))} new jobs, "
                           f"{fmt(jobs.get('coalescedCalls'))} calls joined a queued job; {fmt(jobs.get('final'))} of the new jobs final; "
                           f"queue drained {'in ' + fmt(drain.get('waited')) + ' s after the run' if drain.get('idle') else 'NOT within the wait (' + fmt(drain.get('waited')) + ' s)'}.")
        away = runs.get("wharf-hot-away")
        if away:
            r_away = self.figure("intake", "Wharf one hot stack, agent away", away["requestsPerSecond"], "req/s", "bare Hummingbird", hb)
            hot_jobs = hot.get("jobs", {}).get("jobs")
            self.md.append(f"- wharf-hot-away: the same call with no agent behind the stack — every call joins its queued deploy and "
                           f"no job runs: {fmt(away['requestsPerSecond'])} req/s = {fmt_ratio(r_away)} bare Hummingbird. With the "
                           f"simulated agent answering at once, the hot stack cycles through jobs as fast as the machine allows "
                           f"({fmt(hot_jobs)} in this run, each stored, sent, answered and stored again) on the same two vCPUs, "
                           f"so 1a measures that pipeline too (bench/FINDINGS.md).")
        hot_jobs = hot.get("jobs", {}).get("jobs")
        thread_lines = (thread_line("in the hot run", hot.get("threads"), hot_jobs, "job of the hot stack"),
                        thread_line("in the round-robin run", rr.get("threads"), rr.get("jobs", {}).get("jobs"), "job"))
        for line in (self.hot_budget(hot, away, hb), self.intake_floor(rr, away, webhook), *thread_lines):
            if line:
                self.md.append(line)
        self.md.append("")
        r_hot = self.figure("intake", "Wharf one hot stack", hot["requestsPerSecond"], "req/s", "bare Hummingbird", hb)
        self.figure("intake", "Wharf one hot stack", hot["requestsPerSecond"], "req/s", "nginx", nginx)
        r_rr = self.figure("intake", "Wharf 10,000 stacks round-robin", rr["requestsPerSecond"], "req/s", "adnanh/webhook", webhook)
        self.figure("intake", "Wharf 10,000 stacks round-robin", rr["requestsPerSecond"], "req/s", "bare Hummingbird", hb)
        self.figure("intake", "bare Hummingbird", hb, "req/s", "nginx", nginx)
        self.figure("intake", "adnanh/webhook", webhook, "req/s", "nginx", nginx)
        self.goal("1a", "one hot stack ≥ 0.9× bare Hummingbird", r_hot is not None and r_hot >= 0.9,
                  f"{fmt(hot['requestsPerSecond'])} req/s = {fmt_ratio(r_hot)} bare Hummingbird", "≥ 0.90×",
                  f"{(r_hot or 0) / 0.9 - 1:+.0%} against the target")
        jobs = rr.get("jobs", {})
        every_final = rr.get("drain", {}).get("idle") and jobs.get("final") == jobs.get("jobs")
        no_errors = rr["non2xx"] == 0 and rr["socketErrors"] == 0
        self.goal("1b", "10,000 stacks round-robin ≥ 2× adnanh/webhook, zero non-2xx, every job final",
                  r_rr is not None and r_rr >= 2 and no_errors and every_final,
                  f"{fmt(rr['requestsPerSecond'])} req/s = {fmt_ratio(r_rr)} webhook; non-2xx {rr['non2xx']}, "
                  f"socket errors {rr['socketErrors']}; {fmt(jobs.get('final'))}/{fmt(jobs.get('jobs'))} jobs final",
                  "≥ 2.00×, 0 non-2xx, all final", f"{(r_rr or 0) / 2 - 1:+.0%} against the throughput target")
        self.chart_intake(runs)

    def hot_budget(self, hot, away, hb):
        """What 0.9× bare Hummingbird leaves per call, and so per job of the hot stack, for its job
        cycle, against what the cycle took in this run."""
        cpus = self.machine.get("host", {}).get("cpus")
        wrk, fleet = hot.get("wrkCpuPerRequestMicros"), hot.get("fleetCpuPerRequestMicros")
        server, http = hot.get("serverCpuPerRequestMicros"), (away or {}).get("serverCpuPerRequestMicros")
        jobs = hot.get("jobs", {}).get("jobs")
        if not cpus or not hb or not jobs or None in (wrk, fleet, server, http):
            return None
        calls_per_job = hot["requests"] / jobs
        cycle_ms = hot["seconds"] / jobs * 1000
        target = 0.9 * hb
        budget = cpus * 1e6 / target
        left = max(budget - wrk - http, 0)
        cycle = (server - http + fleet) * calls_per_job
        return (f"- 1a's budget: 0.9× bare Hummingbird is {fmt(target)} calls/s, which on {cpus} vCPUs leaves "
                f"{budget:.1f} µs of CPU a call for everything on the machine. wrk took {wrk} µs a call in the hot run, and "
                f"a call with no job behind it (agent away) {http} µs of the server's, which leaves {left:.1f} µs a call for "
                f"the job cycle: two commits and their syncs, the job and its result over the link, the hand-offs between "
                f"threads, and the simulated agent. A job turned every {cycle_ms:.2f} ms in this run ({calls_per_job:.0f} "
                f"calls a job); at the target rate that is {target * cycle_ms / 1000:.0f} calls a job, so "
                f"{left * target * cycle_ms / 1000:.0f} µs a job. The cycle took {cycle:.0f} µs a job (the server's CPU a hot "
                f"call beyond an agent-away call's, plus the fleet's, times the calls a job; bench/FINDINGS.md).")

    def intake_floor(self, rr, away, webhook):
        """What 2× adnanh/webhook leaves per call on this machine's vCPUs, against what the load client,
        the simulated fleet and the HTTP work alone (the agent-away call) took per call in this run."""
        cpus = self.machine.get("host", {}).get("cpus")
        wrk, fleet = rr.get("wrkCpuPerRequestMicros"), rr.get("fleetCpuPerRequestMicros")
        http = (away or {}).get("serverCpuPerRequestMicros")
        if not cpus or not webhook or None in (wrk, fleet, http):
            return None
        budget = cpus * 1e6 / (2 * webhook)
        fixed = wrk + fleet + http
        verdict = ("more than the whole budget, before Wharf stores, sends or finishes a single job"
                   if fixed >= budget else f"leaving {budget - fixed:.1f} µs a call for storing, sending and finishing its job")
        return (f"- 1b's budget: 2× adnanh/webhook is {fmt(2 * webhook)} calls/s, which on {cpus} vCPUs leaves "
                f"{budget:.1f} µs of CPU a call for everything on the machine. In this run the round-robin's wrk took "
                f"{wrk} µs a call and the simulated fleet {fleet} µs a job (one job a call), and a call that only joins in "
                f"memory (the agent-away run: the HTTP work and the lane, no job) {http} µs of the server's: {fixed:.1f} µs, "
                f"{verdict} (bench/FINDINGS.md).")

    def dispatch(self, p):
        rtt = p["zmqRoundTrip"]
        paced = p["zmqRoundTripPaced"]
        self.md.append("## 2. Dispatch latency (paced open-loop webhooks; ms)\n")
        self.md.append(f"Baseline, raw libzmq ROUTER→DEALER→ROUTER round trip (CURVE + ZAP, 100 B): back to back p50 "
                       f"{rtt['p50Micros'] / 1000:.3f} / p99 {rtt['p99Micros'] / 1000:.3f} / max {rtt['maxMicros'] / 1000:.3f} ms; "
                       f"1 ms apart p50 {paced['p50Micros'] / 1000:.3f} / p99 {paced['p99Micros'] / 1000:.3f} / max {paced['maxMicros'] / 1000:.3f} ms.\n")
        rows = []
        for key, label in DISPATCH_CASES:
            case = p["cases"].get(key)
            if not case:
                continue
            h, f, a = case["holdAfter202Ms"], case["finalAfterResultMs"], case["ackAfterResultMs"]
            sync = case.get("syncProbeMs") or {}
            rows.append([label, case["jobs"], case["notFinal"], case["httpMs"].get("p99"),
                         h.get("p50"), h.get("p99"), h.get("max"), f.get("p50"), f.get("p99"), f.get("max"),
                         a.get("p99"), fmt_ratio(ratio(h.get("p99"), paced["p99Micros"] / 1000)),
                         fmt_ratio(ratio(f.get("p99"), paced["p99Micros"] / 1000)),
                         f"{fmt(sync.get('p50'), 2)} / {fmt(sync.get('p99'), 2)}", fmt_ratio(ratio(f.get("p99"), sync.get("p99")))])
        self.table(["case", "jobs", "not final", "HTTP p99", "202→held p50", "p99", "max", "result→final p50", "p99", "max",
                    "result→ack p99", "held p99 vs zmq", "final p99 vs zmq", "sync p50 / p99", "final p99 vs sync"], rows)
        self.md.append("`202→held`: the agent read the job, minus the moment the client had the 202 (negative when the "
                       "job reached the agent before the HTTP answer reached the client: the server dispatches before it "
                       "answers). `result→final`: the job's `finished_at` in the store minus the moment the agent sent its "
                       "result. `result→ack`: until the agent held the server's `result_ack`. `sync`: in the same seconds, "
                       "a 4-KiB write and `fdatasync` every 5 ms on the store's file system — what one commit's sync takes "
                       "under that load (the store commits with `synchronous = FULL`; a result waits for the commit before "
                       "it, and its acknowledgement for its own). Fleet overhead: "
                       f"{fmt((p.get('fleet1000') or {}).get('meanIterationMs'), 3)} ms per wake-up on average with 1,000 agents.\n")
        worst = p["cases"].get("agents1000-rate1000")
        for key, _ in DISPATCH_CASES:
            case = p["cases"].get(key)
            if case:
                self.figure("dispatch", f"{key} 202→held p99", case["holdAfter202Ms"].get("p99"), "ms",
                            "raw libzmq round trip p99 (1 ms apart)", paced["p99Micros"] / 1000, better="lower")
                self.figure("dispatch", f"{key} result→final p99", case["finalAfterResultMs"].get("p99"), "ms",
                            "raw libzmq round trip p99 (1 ms apart)", paced["p99Micros"] / 1000, better="lower")
                if case.get("syncProbeMs"):
                    self.figure("dispatch", f"{key} result→final p99", case["finalAfterResultMs"].get("p99"), "ms",
                                "4-KiB write + fdatasync p99, same seconds", case["syncProbeMs"].get("p99"), better="lower")
        if worst:
            held = worst["holdAfter202Ms"].get("p99")
            final = worst["finalAfterResultMs"].get("p99")
            met = held is not None and final is not None and held < 2 and final < 2 and worst["notFinal"] == 0
            self.goal("2", "p99 < 2 ms at 1,000 agents and 1,000 webhooks/s (202→held and result→final)", met,
                      f"202→held p99 {fmt(held, 3)} ms, result→final p99 {fmt(final, 3)} ms, {worst['notFinal']} not final",
                      "< 2 ms", f"{max(held or 0, final or 0) - 2:+.3f} ms against the target")
        self.chart_dispatch(p)

    def scale(self, p):
        z = p["zmq"]
        rnd = p["round"]
        agents = p["agents"]
        self.md.append(f"## 3. Scale: {agents:,} simulated agents (CURVE) on one server\n")
        rows = [
            ["time to connect every agent (s)", p["connect"]["allConnectedSeconds"] if p["connect"].get("allConnected", True) else "not within the wait", z["connectSeconds"],
             fmt_ratio(ratio(p["connect"]["allConnectedSeconds"], z["connectSeconds"]))],
            ["server RSS with every agent connected (MiB)", p["serverRssConnectedMiB"], z["routerRssMiB"],
             fmt_ratio(ratio(p["serverRssConnectedMiB"], z["routerRssMiB"]))],
            ["one webhook per environment, all at once: all final (s)", rnd.get("allFinalSeconds"), z["roundSeconds"],
             fmt_ratio(ratio(rnd.get("allFinalSeconds"), z["roundSeconds"]))],
        ]
        self.table(["figure", "Wharf", "raw libzmq", "ratio"], rows)
        self.md.append(f"- Round: {fmt(rnd['calls'])} calls ({rnd['statuses']}), intake done after {fmt(rnd.get('intakeSeconds'), 3)} s, "
                       f"every job held by its agent after {fmt(rnd.get('allHeldSeconds'), 3)} s, every job final (result acknowledged) after "
                       f"{fmt(rnd.get('allFinalSeconds'), 3)} s; {rnd['jobsFinal']:,} of {rnd['jobs']:,} jobs final, {rnd['jobsLost']:,} not final when the "
                       f"wait ended (last one final in the store after {fmt(rnd.get('allFinalInStoreSeconds'), 3)} s).")
        c = p["connect"]
        if not c.get("allConnected", True):
            self.md.append(f"- **Not every agent was welcomed** within the part's wait: {c.get('welcomedAtStop', '?'):,} of {agents:,} "
                           f"welcomed when the fleets stopped; the first deploys queued before the connect "
                           f"{'ended' if c.get('firstDeploysFinal') else 'had not all ended'} within their wait.")
        self.md.append(f"- Server RSS: {p['serverRssIdleMiB']} MiB idle, {p['serverRssConnectedMiB']} MiB with {agents:,} agents, "
                       f"peak {p['serverRssPeakInRoundMiB']} MiB during the round. Fleet processes: {p['fleetRssMiB']} MiB in all "
                       f"({p['connect']['processes']} processes).")
        busy = p.get("roundCpu")
        if busy:
            self.md.append(f"- During the round ({busy['seconds']} s from the first call until every job was seen final): the server used "
                           f"{busy['serverCpuSeconds']} s of CPU ({busy['serverCpuSeconds'] / busy['seconds']:.2f} vCPUs on average; "
                           f"{busy['serverCpuSeconds'] / max(rnd['jobs'], 1) * 1e6:.0f} µs a job), the fleet {busy['fleetCpuSeconds']} s.")
        client = f" The load client took {busy['clientCpuSeconds']} s of CPU." if busy and "clientCpuSeconds" in busy else ""
        line = thread_line("in the round", p.get("roundThreads"), rnd["jobs"], "job", client)
        if line:
            self.md.append(line)
        idle = p.get("idleCpu")
        if idle:
            share = lambda cpu: f"{cpu / idle['seconds'] * 100:.0f} % of one vCPU"
            self.md.append(f"- Idle, with every agent connected and only pinging, over {idle['seconds']} s: the server used "
                           f"{idle['serverCpuSeconds']} s of CPU ({share(idle['serverCpuSeconds'])}), the fleet {idle['fleetCpuSeconds']} s "
                           f"({share(idle['fleetCpuSeconds'])}). Past 2,000 agents the server asks for a longer ping interval than 2 s, "
                           f"3 s, or 4 s past 3,000 agents, at most: 1,000 pings a second up to 4,000 agents, 2,500 at 10,000 (docs/production.md).")
        self.md.append("- These are the RSS figures right after the connect and its round. Both Wharf and raw libzmq then grow by about 56 KiB "
                       "per connection as pings and jobs fill libzmq's pipe chunks, and level off after about 500 messages each "
                       "way (half an hour of 2-s pings, about twice as long at the 4-s interval such a fleet is asked for): about 1 GiB for 10,000 agents "
                       "(bench/FINDINGS.md, fifteenth pass).")
        self.md.append("")
        self.figure("scale", "connect all agents", p["connect"]["allConnectedSeconds"], "s", "raw libzmq", z["connectSeconds"], better="lower")
        self.figure("scale", "server RSS, all connected", p["serverRssConnectedMiB"], "MiB", "raw libzmq ROUTER", z["routerRssMiB"], better="lower")
        self.figure("scale", "round: all jobs final", rnd.get("allFinalSeconds"), "s", "raw libzmq round", z["roundSeconds"], better="lower")
        full = agents >= 10000
        rss = max(p["serverRssConnectedMiB"], p["serverRssPeakInRoundMiB"])
        connected_all = p["connect"].get("allConnected", True)
        self.goal("3a", f"server RSS ≤ 512 MiB with {agents:,} agents", full and connected_all and rss <= 512,
                  f"{rss} MiB (after the connect {p['serverRssConnectedMiB']}, peak in round {p['serverRssPeakInRoundMiB']})"
                  + ("" if connected_all else f"; only {p['connect'].get('welcomedAtStop', 0):,} agents were welcomed, so this is not the figure for {agents:,}"),
                  "≤ 512 MiB", f"{rss - 512:+.0f} MiB against the target")
        final = rnd.get("allFinalSeconds")
        self.goal("3b", f"round of {agents:,} webhooks, durable jobs included, ≤ 3 s, none lost",
                  full and final is not None and final <= 3 and rnd["jobsLost"] == 0,
                  f"{fmt(final, 3)} s; {rnd['jobsLost']:,} of {rnd['jobs']:,} jobs not final when the wait ended", "≤ 3 s, 0 lost",
                  f"{(final or 0) - 3:+.2f} s against the target" if final is not None else "did not finish")

    def footprint(self, p):
        z = p["zmq"]
        self.md.append("## 4. Footprint (idle RSS)\n")
        self.table(["process", "RSS MiB", "baseline", "baseline MiB", "ratio"], [
            ["wharf-server, idle", p["serverIdleMiB"], "nginx (master + workers), idle", p["nginxIdleMiB"],
             fmt_ratio(ratio(p["serverIdleMiB"], p["nginxIdleMiB"]))],
            ["wharf-server, idle", p["serverIdleMiB"], "adnanh/webhook, idle", p["webhookIdleMiB"],
             fmt_ratio(ratio(p["serverIdleMiB"], p["webhookIdleMiB"]))],
            ["wharf-server, one agent connected", p["serverWithOneAgentMiB"], "raw libzmq CURVE ROUTER process", z["routerRssMiB"],
             fmt_ratio(ratio(p["serverWithOneAgentMiB"], z["routerRssMiB"]))],
            ["wharf-agent --simulate 0s, connected", p["agentConnectedMiB"], "raw libzmq CURVE DEALER process", z["dealerRssMiB"],
             fmt_ratio(ratio(p["agentConnectedMiB"], z["dealerRssMiB"]))],
        ])
        self.figure("footprint", "wharf-server idle", p["serverIdleMiB"], "MiB", "adnanh/webhook idle", p["webhookIdleMiB"], better="lower")
        self.figure("footprint", "wharf-server idle", p["serverIdleMiB"], "MiB", "nginx idle", p["nginxIdleMiB"], better="lower")
        self.figure("footprint", "wharf-agent connected", p["agentConnectedMiB"], "MiB", "raw libzmq DEALER process", z["dealerRssMiB"], better="lower")
        self.goal("4a", "wharf-server idle ≤ 50 MiB", p["serverIdleMiB"] <= 50, f"{p['serverIdleMiB']} MiB", "≤ 50 MiB",
                  f"{p['serverIdleMiB'] - 50:+.1f} MiB against the target")
        self.goal("4b", "connected wharf-agent ≤ 20 MiB", p["agentConnectedMiB"] <= 20, f"{p['agentConnectedMiB']} MiB", "≤ 20 MiB",
                  f"{p['agentConnectedMiB'] - 20:+.1f} MiB against the target")

    def redeploy(self, p):
        w, m = p["wharf"], p["manual"]
        self.md.append(f"## 5. Redeploy on a real engine (`{p['compose']}`, {len(w['runs'])} runs each, seconds)\n")
        self.table(["way", "median", "min", "max", "runs"], [
            ["Wharf webhook (`?TAG=…&wait=120`) → new content served", f"{w['median']:.3f}", f"{w['min']:.3f}", f"{w['max']:.3f}",
             ", ".join(f"{x:.2f}" for x in w["runs"])],
            [f"by hand: `{p['compose']} pull && {p['compose']} up -d` → new content served", f"{m['median']:.3f}", f"{m['min']:.3f}", f"{m['max']:.3f}",
             ", ".join(f"{x:.2f}" for x in m["runs"])],
        ])
        overhead = round(w["median"] - m["median"], 3)
        allowed = max(0.1 * m["median"], 0.3)
        self.md.append(f"Overhead: {overhead:+.3f} s ({overhead / m['median']:+.0%}); allowed max(10 %, 300 ms) = {allowed:.3f} s. "
                       f"The webhook answered (job final) after {', '.join(str(a['answeredAfter']) for a in p['wharfAnswers'])} s "
                       f"(statuses {', '.join(str(a['status']) for a in p['wharfAnswers'])}).\n")
        self.figure("redeploy", "webhook → new content", w["median"], "s", "compose pull && up -d by hand", m["median"], better="lower")
        self.goal("5", "redeploy overhead ≤ max(10 %, 300 ms) of compose by hand", overhead <= allowed,
                  f"{overhead:+.3f} s ({overhead / m['median']:+.0%})", f"≤ {allowed:.3f} s", f"{overhead - allowed:+.3f} s against the target")

    # -- charts -------------------------------------------------------------------

    def gnuplot(self, script):
        try:
            subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as error:
            print(f"report: gnuplot failed: {error}", file=sys.stderr)

    def chart_intake(self, runs):
        data = os.path.join(self.results, "intake.dat")
        labels = [("nginx", "nginx"), ("hummingbird", "bare Hummingbird"), ("webhook", "adnanh/webhook"),
                  ("wharf-hot", "Wharf: hot stack"), ("wharf-roundrobin", "Wharf: 10k stacks")]
        with open(data, "w") as f:
            for i, (key, label) in enumerate(labels):
                f.write(f'{i} "{label}" {runs[key]["requestsPerSecond"]} {runs[key]["p99Ms"]}\n')
        self.gnuplot(f"""
set terminal pngcairo size 1000,520 font "DejaVu Sans,10"
set output "{os.path.join(self.results, 'intake.png')}"
set title "Webhook intake: requests/s (wrk, 64 connections), p99 latency on the right"
set style fill solid 0.8 border -1
set boxwidth 0.6
set yrange [0:*]
set ylabel "requests per second"
set y2label "p99 latency (ms)"
set y2tics
set logscale y2
set grid ytics
set xtics rotate by 0
set key top right
plot "{data}" using 1:3:xtic(2) with boxes lc rgb "#4C72B0" title "req/s", \\
     "" using 1:3:(sprintf("%.0f", $3)) with labels offset 0,0.8 notitle, \\
     "" using 1:4 axes x1y2 with linespoints pt 7 lc rgb "#C44E52" title "p99 ms"
""")

    def chart_dispatch(self, p):
        data = os.path.join(self.results, "dispatch.dat")
        paced = p["zmqRoundTripPaced"]
        with open(data, "w") as f:
            for i, (key, label) in enumerate(DISPATCH_CASES):
                case = p["cases"].get(key)
                if not case:
                    continue
                h, fin = case["holdAfter202Ms"], case["finalAfterResultMs"]
                f.write(f'{i} "{label}" {max(h.get("p50") or 0, 0.001)} {max(h.get("p99") or 0, 0.001)} {max(h.get("max") or 0, 0.001)} '
                        f'{max(fin.get("p50") or 0, 0.001)} {max(fin.get("p99") or 0, 0.001)} {max(fin.get("max") or 0, 0.001)}\n')
        zp99 = paced["p99Micros"] / 1000
        zp50 = paced["p50Micros"] / 1000
        self.gnuplot(f"""
set terminal pngcairo size 1100,520 font "DejaVu Sans,10"
set output "{os.path.join(self.results, 'dispatch.png')}"
set multiplot layout 1,2 title "Dispatch latency percentiles (ms, log scale); dashed: raw libzmq round trip p50 / p99 (1 ms apart); dotted: 2 ms goal"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [0.01:*]
set grid ytics
set xtics rotate by -20
set key top left
set title "202 → agent holds the job"
plot "{data}" using 3:xtic(2) title "p50" lc rgb "#55A868", "" using 4 title "p99" lc rgb "#4C72B0", "" using 5 title "max" lc rgb "#C44E52", \\
     {zp50} with lines dt 2 lc rgb "black" notitle, {zp99} with lines dt 2 lc rgb "black" notitle, 2 with lines dt 3 lc rgb "red" notitle
set title "agent's result → job final in the store"
plot "{data}" using 6:xtic(2) title "p50" lc rgb "#55A868", "" using 7 title "p99" lc rgb "#4C72B0", "" using 8 title "max" lc rgb "#C44E52", \\
     {zp50} with lines dt 2 lc rgb "black" notitle, {zp99} with lines dt 2 lc rgb "black" notitle, 2 with lines dt 3 lc rgb "red" notitle
unset multiplot
""")

    # -- output -------------------------------------------------------------------

    def build(self):
        m = self.machine
        host = m.get("host", {})
        versions = m.get("versions", {})
        self.md.insert(0, "")
        head = [
            "# Wharf benchmarks — latest results",
            "",
            f"Run of {m.get('date', '?')} on {host.get('cpus')} × {host.get('cpu')}, {host.get('memoryGiB')} GiB, Linux {host.get('kernel')} "
            f"(load average at start {host.get('loadAverageAtStart')}); {self.total_seconds} s in all, parts run: {', '.join(self.ran)}; "
            f"release build ({m.get('buildSeconds')} s to build).",
            "",
            "Versions: " + "; ".join(f"{k} {v}" for k, v in versions.items() if v),
            "",
            f"Webhook rate limits: {m.get('rateLimits')}.",
            "",
            "The machine is shared and noisy: read the ratios to baselines measured in the same run, not the absolute numbers.",
            "",
        ]
        sync, handoff = self.probe.get("fdatasync"), self.probe.get("handoff")
        if sync and handoff:
            across = (f"{handoff['acrossCpusCpuMicros']} µs with the two threads on different vCPUs, "
                      if handoff.get("acrossCpusCpuMicros", -1) >= 0 else "")
            head += [f"This machine at the start of the run (bench/lib/probe.c): a 4-KiB write and `fdatasync` on the run's "
                     f"file system took {sync['wallMicros']} µs, {sync['cpuMicros']} µs of it CPU; a thread waking another "
                     f"and sleeping until woken back took {across}{handoff['oneCpuCpuMicros']} µs on one vCPU (CPU per round "
                     f"trip). Every commit of the store pays the first; every hand-off between threads, a share of the second.",
                     ""]
        stale = []
        for name in PART_ORDER:
            part = self.parts.get(name)
            if part is None:
                continue
            try:
                getattr(self, name)(part)
            except (KeyError, TypeError, ZeroDivisionError) as error:
                self.md.append(f"## {name}: result file incomplete ({error!r})\n")
            if name not in self.ran:
                stale.append(name)
        if stale:
            head.append(f"Parts not run this time, shown from their last run: {', '.join(stale)}.\n")
        goals = ["## Goals", ""]
        for g in self.goals:
            goals.append(f"- **{g['goal']}. {g['text']}: {'met' if g['met'] else 'MISSED'}** — {g['value']} (target {g['target']}; {g['margin']}).")
        goals.append("")
        findings_path = os.path.join(os.path.dirname(self.results), "FINDINGS.md")
        findings = []
        if os.path.exists(findings_path):
            with open(findings_path) as f:
                findings = ["", f.read().strip(), ""]
        charts = ["Charts: `intake.png` (throughput against the baselines), `dispatch.png` (dispatch latency percentiles).", ""]
        markdown = "\n".join(head + goals + self.md + charts + findings) + "\n"
        with open(os.path.join(self.results, "latest.md"), "w") as f:
            f.write(markdown)
        with open(os.path.join(self.results, "latest.json"), "w") as f:
            json.dump({"generatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "totalSeconds": self.total_seconds,
                       "partsRun": self.ran, "machine": m, "probe": self.probe, "goals": self.goals, "figures": self.figures,
                       "parts": self.parts}, f, indent=2)
        print("\n".join(goals))


def main():
    results, total, ran = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    Report(results, total, ran).build()


if __name__ == "__main__":
    main()
