#!/usr/bin/env python3
"""bench/two_rounds.py RPC_ADDR N [K [BYTES]]: the gossip floor of a ballot and a relay.

Any protocol that collects votes and then spreads them needs two rounds: a
query until a quorum has answered, then a second query until every node has
answered. This runs the two rounds with the bundle's trivial `ping` handler
(through the `serf` CLI, as bench/cluster.sh sends its plain event) and prints
the seconds from the first query to the last answer of the second. What the
Factom bundle takes beyond this is its handlers' own work, not the protocol.

With K (default 1) the second round is K queries sent at once, each with a
BYTES-byte payload (default none), every one of them answered by every node:
the floor of a relay that must carry more votes than one query holds (Serf
limits a query to 1024 bytes; at 65 authorities a quorum's 33 signatures
take 3 relay queries), with the trivial handler and the same message count
and sizes.
"""
import subprocess
import sys
import threading
import time


def query(payload=""):
    argv = ["serf", "query", "-rpc-addr=" + RPC, "-no-ack", "-timeout=10s", "ping"]
    if payload:
        argv.append(payload)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


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
    second = [query(PAYLOAD) for _ in range(K)]
    got2 = [0] * K

    def read(i):
        got2[i] = answers(second[i], N)
    readers = [threading.Thread(target=read, args=(i,)) for i in range(K)]
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    t1 = time.monotonic()
    for p in [first] + second:
        p.kill()
        p.wait()
    if got1 >= QUORUM and min(got2) >= N:
        return t1 - t0
    print("two_rounds: a ping query ended short: %d of %d, then %s of %d answers"
          % (got1, QUORUM, "/".join(map(str, got2)), N), file=sys.stderr)
    return None


def usage(why):
    sys.exit("two_rounds: %s\nusage: bench/two_rounds.py RPC_ADDR N [K [BYTES]]"
             " (N >= 1 nodes, K >= 1 queries, 0 <= BYTES <= 1024)" % why)


if not 3 <= len(sys.argv) <= 5:
    usage("expected 2 to 4 arguments")
try:
    RPC, N = sys.argv[1], int(sys.argv[2])
    K = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    BYTES = int(sys.argv[4]) if len(sys.argv) > 4 else 0
except ValueError as e:
    usage(str(e))
if N < 1 or K < 1 or not 0 <= BYTES <= 1024:
    usage("N=%d K=%d BYTES=%d out of range" % (N, K, BYTES))
PAYLOAD = "x" * BYTES
QUORUM = N // 2 + 1
# Serf sends each answer once, over UDP, and gives a query no second chance:
# a rare lost answer is not the floor's to measure, so try again (twice).
for attempt in range(3):
    t = two_rounds()
    if t is not None:
        print("%.3f" % t)
        sys.exit(0)
sys.exit("two_rounds: three tries, and a query ended short every time")
