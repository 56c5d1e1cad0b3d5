#!/usr/bin/env python3
"""Prints the machine and the versions a benchmark run used, as JSON: machine.py ROOT RATE_NOTE BUILD_SECONDS."""
import json
import os
import platform
import subprocess
import sys
import time


def run(*command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=20)
        return (out.stdout + out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def first_line(text):
    return text.splitlines()[0].strip() if text else None


def main():
    root, rate_note, build_seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cpu = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    commit = run("git", "-C", root, "rev-parse", "--short", "HEAD")
    # The results directory is being written by this very run (machine.json itself is truncated
    # before this runs): only changes elsewhere make the measured code differ from the commit.
    dirty = run("git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results")
    print(json.dumps({
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {
            "cpus": os.cpu_count(), "cpu": cpu, "memoryGiB": round(mem_kib / 1048576, 1),
            "kernel": platform.release(), "loadAverageAtStart": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {
            "wharf": f"{commit}{' (with uncommitted changes)' if dirty else ''}",
            "swift": first_line(run("swift", "--version")),
            "hummingbird": "2.28.1",
            "libzmq": run("pkg-config", "--modversion", "libzmq"),
            "nginx": first_line(run("nginx", "-v") or run("/usr/sbin/nginx", "-v")),
            "webhook": first_line(run("webhook", "-version")),
            "wrk": first_line(run("wrk", "-v")),
            "docker": first_line(run("docker", "--version")),
            "compose": first_line(run("docker", "compose", "version")),
            "python": platform.python_version(),
        },
        "rateLimits": rate_note,
        "buildSeconds": build_seconds,
    }, indent=2))


if __name__ == "__main__":
    main()
