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
    """Read until `want` nodes have answered; False if the query ended first."""
    got = 0
    for line in proc.stdout:
        if line.startswith("Response from"):
            got += 1
            if got >= want:
                return True
    return False


RPC, N = sys.argv[1], int(sys.argv[2])
QUORUM = N // 2 + 1
t0 = time.monotonic()
first = query()
ok = answers(first, QUORUM)
second = query()
ok = answers(second, N) and ok
t1 = time.monotonic()
for p in (first, second):
    p.kill()
    p.wait()
if not ok:
    sys.exit("two_rounds: a ping query ended before enough nodes answered")
print("%.3f" % (t1 - t0))
