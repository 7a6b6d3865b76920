#!/usr/bin/env python3
"""bench/two_rounds.py RPC_ADDR N: the gossip floor of a ballot and a relay.

Any protocol that collects votes and then spreads them needs two rounds: a
query until a quorum has answered, then a second query until every node has
answered. This runs the two rounds with the bundle's trivial `ping` handler
(through the `serf` CLI, as bench/cluster.sh sends its plain event) and prints
the seconds from the first query to the last answer of the second. What the
Factom bundle takes beyond this is its handlers' own work, not the protocol.
"""
import subprocess
import sys
import time


def query():
    return subprocess.Popen(
        ["serf", "query", "-rpc-addr=" + RPC, "-no-ack", "-timeout=10s", "ping"],
        stdout=subprocess.PIPE, text=True)


def answers(proc, want):
    """Read until `want` nodes have answered; the count if the query ended first."""
    got = 0
    for line in proc.stdout:
        if line.startswith("Response from"):
            got += 1
            if got >= want:
                return got
    return got


def two_rounds():
    """Seconds for both rounds, or None when a query ended short (logged)."""
    t0 = time.monotonic()
    first = query()
    got1 = answers(first, QUORUM)
    second = query()
    got2 = answers(second, N)
    t1 = time.monotonic()
    for p in (first, second):
        p.kill()
        p.wait()
    if got1 >= QUORUM and got2 >= N:
        return t1 - t0
    print("two_rounds: a ping query ended short: %d of %d, then %d of %d answers"
          % (got1, QUORUM, got2, N), file=sys.stderr)
    return None


RPC, N = sys.argv[1], int(sys.argv[2])
QUORUM = N // 2 + 1
# Serf sends each answer once, over UDP, and gives a query no second chance:
# a rare lost answer is not the floor's to measure, so try again (twice).
for attempt in range(3):
    t = two_rounds()
    if t is not None:
        print("%.3f" % t)
        sys.exit(0)
sys.exit("two_rounds: three tries, and a query ended short every time")
