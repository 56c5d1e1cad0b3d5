#!/usr/bin/env python3
"""Keep a scratch copy of the Wharf tree for the benchmarks, with the webhook rate limits lifted.

    scratch_tree.py SRC DST

wharf-server limits webhook calls per token (20/s, burst 40) and per client address (50/s, burst
100), with no flag to change that; a load generator on one address measures the limiter, not the
server. Until the server has such a flag, the benchmarks build a copy of the tree in which the two
limiter presets allow 1e9 calls/s with a burst of 1e9: the limiter's code still runs on every call
(the same lock and bucket work), it just never refuses.

Only files whose content changed are written, so SwiftPM's incremental build stays incremental.
Prints a line saying what it patched.
"""
import os
import sys

PATCHES = {
    os.path.join("Sources", "Server", "WharfServer", "Webhooks", "RateLimiter.swift"): [
        ("public static let perWebhookToken = Configuration(rate: 20, burst: 40)",
         "public static let perWebhookToken = Configuration(rate: 1e9, burst: 1_000_000_000)  // bench: lifted"),
        ("public static let perClientAddress = Configuration(rate: 50, burst: 100)",
         "public static let perClientAddress = Configuration(rate: 1e9, burst: 1_000_000_000)  // bench: lifted"),
    ],
}
ENTRIES = ["Package.swift", "Package.resolved", "Sources", "Tests"]


def files(root):
    out = {}
    for entry in ENTRIES:
        path = os.path.join(root, entry)
        if os.path.isfile(path):
            out[entry] = path
        elif os.path.isdir(path):
            for directory, _, names in os.walk(path):
                for name in names:
                    full = os.path.join(directory, name)
                    out[os.path.relpath(full, root)] = full
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    wanted = files(src)
    have = files(dst) if os.path.isdir(dst) else {}
    changed = 0
    for rel, path in wanted.items():
        with open(path, "rb") as f:
            data = f.read()
        for old, new in PATCHES.get(rel, []):
            text = data.decode()
            if old not in text:
                sys.exit(f"scratch_tree: {rel} no longer contains '{old}': update bench/lib/scratch_tree.py")
            data = text.replace(old, new).encode()
        target = os.path.join(dst, rel)
        if rel in have:
            with open(target, "rb") as f:
                if f.read() == data:
                    continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
        changed += 1
    for rel in set(have) - set(wanted):
        os.remove(os.path.join(dst, rel))
        changed += 1
    print(f"scratch tree {dst}: {changed} file(s) updated; rate limits lifted in {', '.join(PATCHES)}")


if __name__ == "__main__":
    main()
