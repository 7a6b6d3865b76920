#!/usr/bin/env python3
"""factomd_sim.py: a factomd v2 JSON-RPC simulator for serfhand's tests.

One process plays one node. It answers current-minute, heights, properties,
diagnostics, authorities, dblock-by-height and directory-block-head in the
shapes factomd 6.x uses (POST /v2, JSON-RPC 2.0, errors as HTTP 400; no
diagnostics for the releases that lack it), optionally over TLS with a
self-signed certificate, and can be switched at runtime between chain states
(healthy, stalled at any minute, booting, syncing by DBStates, behind) and
transport faults (down, slow, garbage, http500, oversized). Each chain state
follows factomd's own code: see docs/simulator.md. Python 3 standard library
only.

  factomd_sim.py --port 18001 --name node1 --state-file /tmp/n1.json [...]
  factomd_sim.py ctl --state-file /tmp/n1.json stalled
  factomd_sim.py ctl --port 18001 slow --delay-ms 900
"""
import argparse
import base64
import hashlib
import json
import os
import select
import signal
import socket
import sys
import threading
import time

CHAIN_MODES = ("healthy", "stalled", "booting", "syncing", "behind")
TRANSPORT_MODES = ("normal", "down", "slow", "garbage", "http500", "oversized")
ALL_MODES = CHAIN_MODES + TRANSPORT_MODES + ("recover",)
NS = 1_000_000_000
MAIN_NETWORK_ID = 4203931043
# factomd releases without the v2 `diagnostics` method: up to 6.1.0, and
# 6.2.0, 6.3.0 and 6.3.1 (as issue 19 found them).
NO_DIAGNOSTICS = {(6, 2, 0), (6, 3, 0), (6, 3, 1)}


def has_diagnostics(version):
    try:
        v = tuple(int(x) for x in version.split("-")[0].split(".")[:3])
    except ValueError:
        return True
    return v >= (6, 1, 1) and v not in NO_DIAGNOSTICS


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def now_ns():
    return time.time_ns()


class Node:
    """The simulated node: a chain clock that can be frozen, and the faults."""

    def __init__(self, a):
        self.lock = threading.Lock()
        self.name = a.name
        self.identity = a.identity or ("888888" + sha("identity:" + a.name)[6:])
        self.pubkey = a.pubkey or sha("pubkey:" + a.name)
        self.role = a.role
        self.version = a.version
        self.user, self.password = a.user, a.password
        self.auth_file = a.authorities
        self.bt_ns = a.blocktime_seconds * NS
        # Chain clock: block `base` started at t0 (chain time = real time -
        # paused, or the moment of the stall while stalled).
        self.base = a.height
        self.t0 = now_ns() - self.bt_ns // 3  # a bit into the block
        self.paused = 0
        self.frozen_at = None
        self.chain = "healthy"
        # syncing / behind: this node's own saved height and when its last
        # block (a DBState) was applied, apart from the network's clock.
        self.own_saved = None
        self.own_at = None
        self.lag = a.behind_blocks
        self.sync_bps = a.sync_blocks_per_second
        self.transport = "normal"
        self.delay_ms = 0
        self.oversize = 8 * 1024 * 1024
        self.chunked = False
        self.down_until = None
        # A byte here wakes the main loop (a control command, a signal). A
        # pipe, not an Event: a signal handler must not take a lock.
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.requests = 0
        self.last_auth = None
        self.last_method = None

    # ---- chain model
    def chain_now(self, t):
        return (self.frozen_at if self.frozen_at is not None else t) - self.paused

    def network(self, t):
        """The network's leader height, minute and start times at t."""
        c = self.chain_now(t)
        k = (c - self.t0) // self.bt_ns
        bstart = self.t0 + k * self.bt_ns
        mlen = self.bt_ns // 10
        minute = (c - bstart) // mlen
        return self.base + k, minute, bstart + self.paused, bstart + minute * mlen + self.paused

    def snapshot(self):
        """What this node reports now (real clock ns). "leaderheight" is
        current-minute's (GetTrueLeaderHeight: the height of the process
        lists the network's acks made), "own" the block this node processes
        (diagnostics' GetLLeaderHeight), "dbheight" the highest saved."""
        t = now_ns()
        lh, minute, bstart, mstart = self.network(t)
        s = {"now": t, "leaderheight": lh, "own": lh, "dbheight": lh - 1, "minute": minute,
             "blockstart": bstart, "minutestart": mstart, "fromdbstate": False}
        if self.chain == "booting":
            # Before the first block since start: nothing loaded, and the
            # start times are still 0 (MoveStateToHeight has not run).
            s.update(leaderheight=0, own=0, dbheight=0, minute=0, blockstart=0, minutestart=0)
        elif self.chain in ("syncing", "behind"):
            saved, at = self.own_saved, self.own_at
            if self.chain == "syncing":  # DBStates arrive at sync_bps
                n = (t - at) * self.sync_bps // NS
                if saved + n >= lh - 1:  # caught up: it follows the network
                    s["fromdbstate"] = True
                    return s
                saved, at = saved + n, at + n * NS // self.sync_bps
            # MoveStateToHeight set both start times when the last DBState
            # was applied; the node is at minute 0 of the block after it.
            s.update(own=saved + 1, dbheight=saved, minute=0, blockstart=at, minutestart=at,
                     fromdbstate=True)
        return s

    def set_chain(self, mode, minute=None):
        t = now_ns()
        if mode == "stalled" and minute is not None and self.frozen_at is None:
            # Stall at that minute: move the chain clock back to it (into
            # the previous block when it is later than the current one).
            _, cur, _, _ = self.network(t)
            self.paused += ((cur - int(minute)) % 10) * (self.bt_ns // 10)
        if mode in ("syncing", "behind") and self.chain not in ("syncing", "behind"):
            self.own_saved = self.network(t)[0] - 1 - self.lag
            self.own_at = t
        elif mode == "behind" and self.chain == "syncing":
            s = self.snapshot()  # the catch-up stops where it got to
            self.own_saved, self.own_at = s["dbheight"], s["blockstart"]
        elif mode == "syncing" and self.chain == "behind":
            self.own_at = t
        if mode == "stalled" and self.frozen_at is None:
            self.frozen_at = t
        elif mode != "stalled" and self.frozen_at is not None:
            self.paused += t - self.frozen_at
            self.frozen_at = None
        self.chain = mode

    def apply(self, cmd):
        """Apply a control command (a dict); returns an error string or None."""
        mode = cmd.get("mode")
        if mode is not None and mode not in ALL_MODES:
            return "unknown mode %r (one of %s)" % (mode, ", ".join(ALL_MODES))
        with self.lock:
            if "delay_ms" in cmd:
                self.delay_ms = int(cmd["delay_ms"])
            if "size_bytes" in cmd:
                self.oversize = int(cmd["size_bytes"])
            if "chunked" in cmd:
                self.chunked = bool(cmd["chunked"])
            if "role" in cmd:
                self.role = str(cmd["role"])
            if "behind_blocks" in cmd:
                self.lag = int(cmd["behind_blocks"])
            if "sync_blocks_per_second" in cmd:
                self.sync_bps = int(cmd["sync_blocks_per_second"])
            if "version" in cmd:
                self.version = str(cmd["version"])
            if "blocktime_seconds" in cmd:
                lh = self.network(now_ns())[0]
                self.bt_ns = int(cmd["blocktime_seconds"]) * NS
                self.base, self.t0 = lh, self.chain_now(now_ns())
            if "leaderheight" in cmd:
                k = (self.chain_now(now_ns()) - self.t0) // self.bt_ns
                self.base = int(cmd["leaderheight"]) - k
            if mode == "recover":
                self.set_chain("healthy")
                self.transport = "normal"
            elif mode in CHAIN_MODES:
                self.set_chain(mode, cmd.get("minute"))
            elif mode in TRANSPORT_MODES:
                self.transport = mode
                self.down_until = None
                if mode == "down" and cmd.get("for_ms"):
                    self.down_until = time.monotonic() + int(cmd["for_ms"]) / 1000
        self.wake()
        return None

    def wake(self):
        try:
            os.write(self.wake_w, b"x")
        except BlockingIOError:
            pass  # full: the loop wakes anyway

    def status(self):
        with self.lock:
            s = self.snapshot()
            return {"name": self.name, "chain": self.chain, "transport": self.transport,
                    "delay_ms": self.delay_ms, "leaderheight": s["leaderheight"],
                    "dbheight": s["dbheight"], "minute": s["minute"], "requests": self.requests,
                    "last_auth": self.last_auth, "last_method": self.last_method,
                    "pid": os.getpid()}

    # ---- methods
    def authorities(self):
        if self.auth_file:
            with open(self.auth_file) as f:
                data = json.load(f)
            entries = data.get("authorities", data) if isinstance(data, dict) else data
        else:
            entries = [{"chainid": self.identity, "signingkey": self.pubkey, "status": "federated"}]
        out = []
        for e in entries:
            a = {"chainid": e["chainid"], "manageid": "888888" + sha("manage:" + e["chainid"])[6:],
                 "matroyshka": sha("matroyshka:" + e["chainid"]),
                 "signingkey": e["signingkey"], "status": e.get("status", "federated"),
                 "anchorkeys": [{"blockchain": "BTC", "level": 0, "keytype": 0,
                                 "key": sha("anchor:" + e["chainid"])[:40]}],
                 "efficiency": 5000, "coinbaseaddress": "FA2jK2HcLnRdS94dEcU27rF3meoJfpUcZPSinpb7AwQvPRY6RL1Q"}
            a.update({k: v for k, v in e.items() if k not in a})
            out.append(a)
        return out

    def m_current_minute(self, s, params):
        # state.IsStalled (state/state.go)
        stall = (s["minutestart"] != 0 and
                 ((s["leaderheight"] >= 3 and s["dbheight"] < s["leaderheight"] - 3) or
                  s["now"] - s["minutestart"] > self.bt_ns * 15 // 100))
        return {"leaderheight": s["leaderheight"], "directoryblockheight": s["dbheight"],
                "minute": s["minute"], "currentblockstarttime": s["blockstart"],
                "currentminutestarttime": s["minutestart"], "currenttime": s["now"],
                "directoryblockinseconds": self.bt_ns // NS, "stalldetected": stall,
                "faulttimeout": 120, "roundtimeout": 30}

    def m_heights(self, s, params):
        # leaderheight = max(GetTrueLeaderHeight, GetHighestAck): the acks of
        # the network reach a node that is behind too.
        return {"directoryblockheight": s["dbheight"], "leaderheight": s["leaderheight"],
                "entryblockheight": s["dbheight"], "entryheight": s["dbheight"]}

    def m_properties(self, s, params):
        return {"factomdversion": self.version, "factomdapiversion": "2.0"}

    def m_authorities(self, s, params):
        return {"authorities": self.authorities()}

    def m_directory_block_head(self, s, params):
        return {"keymr": sha("dblock:%d" % s["dbheight"])}

    def m_diagnostics(self, s, params):
        auths = self.authorities()
        feds = [a for a in auths if a["status"] == "federated"]
        audits = [a for a in auths if a["status"] == "audit"]
        if not has_diagnostics(self.version):
            raise RpcError(-32601, "Method not found")
        if self.chain == "stalled":
            syncing = {"status": "Syncing EOMs", "received": 1, "expected": len(feds),
                       "missing": [a["chainid"] for a in feds if a["chainid"] != self.identity]}
        else:
            syncing = {"status": "Processing"}
        return {
            "name": self.name, "id": self.identity, "publickey": self.pubkey, "role": self.role,
            "leaderheight": s["own"], "currentminute": s["minute"],
            "currentminuteduration": s["now"] - s["minutestart"],
            "previousminuteduration": self.bt_ns // 10,
            "balancehash": sha("balance:%d" % s["dbheight"]),
            "tempbalancehash": sha("tempbalance:%d" % s["own"]),
            "lastblockfromdbstate": s["fromdbstate"], "syncing": syncing,
            # Go encodes an empty (nil) slice as null: "audits": null on a
            # network without audit servers.
            "authset": {
                "leaders": [{"id": a["chainid"], "vm": i, "listheight": s["minute"],
                             "listlength": s["minute"] + 1, "nextnil": 0}
                            for i, a in enumerate(feds)] or None,
                "audits": [{"id": a["chainid"], "online": True} for a in audits] or None},
            "elections": {"inprogress": False},
        }

    def m_dblock_by_height(self, s, params):
        if not isinstance(params, dict) or not isinstance(params.get("height"), int) \
                or isinstance(params.get("height"), bool) or params["height"] < 0:
            raise RpcError(-32602, "Invalid params")
        h = params["height"]
        if h > s["dbheight"]:
            raise RpcError(-32008, "Block not found")
        start_ns = self.t0 + (h - self.base) * self.bt_ns + self.paused
        keymr = sha("dblock:%d" % h)
        entries = [{"chainid": "%064x" % c, "keymr": sha("e%d:%d" % (c, h))} for c in (10, 12, 15)]
        res = {"dblock": {
            "dbhash": sha("dbhash:%d" % h), "keymr": keymr, "headerhash": sha("hh:%d" % h),
            "header": {"version": 0, "networkid": MAIN_NETWORK_ID, "bodymr": sha("body:%d" % h),
                       "prevkeymr": sha("dblock:%d" % (h - 1)), "prevfullhash": sha("full:%d" % (h - 1)),
                       "timestamp": max(start_ns, 0) // (60 * NS), "dbheight": h,
                       "blockcount": len(entries), "chainid": "%064x" % 13},
            "dbentries": entries}}
        if not params.get("noraw"):
            res["rawdata"] = sha("raw:%d" % h) * 4
        return res


class RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


METHODS = {
    "current-minute": Node.m_current_minute,
    "heights": Node.m_heights,
    "properties": Node.m_properties,
    "authorities": Node.m_authorities,
    "directory-block-head": Node.m_directory_block_head,
    "diagnostics": Node.m_diagnostics,
    "dblock-by-height": Node.m_dblock_by_height,
}


def make_handler(node):
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "factomd-sim"

        def log_message(self, fmt, *args):  # quiet
            pass

        def send(self, code, body, ctype="application/json", extra=None, length=True):
            if isinstance(body, str):
                body = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            if length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def read_body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n > 0 else b""

        def do_GET(self):
            if self.path == "/control":
                return self.send(200, json.dumps(node.status()))
            self.send(404, "404 page not found\n", "text/plain")

        def do_POST(self):
            raw = self.read_body()
            if self.path == "/control":
                try:
                    cmd = json.loads(raw or b"{}")
                    err = node.apply(cmd) if isinstance(cmd, dict) else "not an object"
                except ValueError as e:
                    err = str(e)
                if err:
                    return self.send(400, json.dumps({"error": err}))
                return self.send(200, json.dumps(node.status()))
            if self.path.split("?")[0] != "/v2":  # a query string is ignored
                return self.send(404, "404 page not found\n", "text/plain")
            with node.lock:
                node.requests += 1
                node.last_auth = self.headers.get("Authorization")
                transport, delay = node.transport, node.delay_ms
                size, chunked = node.oversize, node.chunked
            if node.user:
                want = "Basic " + base64.b64encode(
                    ("%s:%s" % (node.user, node.password)).encode()).decode()
                if self.headers.get("Authorization") != want:
                    return self.send(401, "401 Unauthorized.\n", "text/plain; charset=utf-8",
                                     {"WWW-Authenticate": 'Basic realm="factomd RPC"'})
            if transport == "slow":
                time.sleep(delay / 1000)
            elif transport == "garbage":
                return self.send(200, "<html><body>Bad Gateway?{{{ not json", "text/plain")
            elif transport == "http500":
                return self.send(500, "Internal Server Error\n", "text/plain")
            elif transport == "oversized":
                pad = "x" * max(size - 64, 0)
                return self.send(200, '{"jsonrpc":"2.0","id":0,"result":{"pad":"%s"}}' % pad,
                                 length=not chunked)
            self.rpc(raw)

        def rpc(self, raw):
            try:
                req = json.loads(raw)
                if not isinstance(req, dict) or not isinstance(req.get("method"), str):
                    raise ValueError("not a request")
            except ValueError:
                return self.reply(None, error=(-32600, "Invalid Request"))
            rid = req.get("id")
            with node.lock:
                node.last_method = req["method"]
                fn = METHODS.get(req["method"])
                if fn is None:
                    return self.reply(rid, error=(-32601, "Method not found"))
                try:
                    result = fn(node, node.snapshot(), req.get("params"))
                except RpcError as e:
                    return self.reply(rid, error=(e.code, e.message))
            self.reply(rid, result=result)

        def reply(self, rid, result=None, error=None):
            if error:
                body = {"jsonrpc": "2.0", "id": rid, "error": {"code": error[0], "message": error[1]}}
                return self.send(400, json.dumps(body))
            self.send(200, json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}))

    return Handler


class Server:
    """The listening socket, which `down` closes and recovery reopens."""

    def __init__(self, node, host, port, tls=None):
        from http.server import ThreadingHTTPServer
        self.cls = ThreadingHTTPServer
        self.cls.allow_reuse_address = True
        self.cls.daemon_threads = True
        self.node, self.host, self.port = node, host, port
        self.tls = tls  # an ssl.SSLContext (factomd -tls), or None
        self.httpd = None
        self.thread = None

    def up(self):
        if self.httpd:
            return
        for _ in range(50):
            try:
                self.httpd = self.cls((self.host, self.port), make_handler(self.node))
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit("factomd-sim: cannot bind %s:%d" % (self.host, self.port))
        self.port = self.httpd.server_address[1]
        if self.tls:
            # The handshake on the first read, in the request's own thread:
            # a client that never speaks TLS blocks nothing else.
            self.httpd.socket = self.tls.wrap_socket(self.httpd.socket, server_side=True,
                                                     do_handshake_on_connect=False)
        # Idle, the loop wakes once a second (not 20 times: 20 simulators would
        # take 7% of a 2-core test machine); down() wakes it at once.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 1.0})
        self.thread.daemon = True
        self.thread.start()

    def down(self):
        if not self.httpd:
            return
        httpd, self.httpd = self.httpd, None
        done = threading.Event()
        threading.Thread(target=self.poke, args=(done,), daemon=True).start()
        httpd.shutdown()
        done.set()
        httpd.server_close()

    def poke(self, done):
        """Connect until shutdown() returns: serve_forever checks for it only
        between two polls, and a connection ends the current one (its handler
        just reads EOF)."""
        while not done.wait(0.01):
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
            except OSError:
                pass


def read_state(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def file_id(path):
    """What changes when write_json replaces the file (a new inode)."""
    try:
        st = os.stat(path)
        return (st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        return None


def write_json(path, obj):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def serve(a):
    node = Node(a)
    if a.mode:
        node.apply({"mode": a.mode, "delay_ms": a.delay_ms})
    tls = None
    if a.tls_cert:
        import ssl  # only here: it is slow to import
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(a.tls_cert, a.tls_key)
    srv = Server(node, a.host, a.port, tls)
    stop = threading.Event()

    def on_stop(*_):
        stop.set()
        node.wake()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGUSR1, lambda *_: node.wake())  # ctl wrote the state file
    seen_seq = None
    seen_id = None  # the state file is read again only when it changed
    if a.state_file:
        seen_id = file_id(a.state_file)
        st = read_state(a.state_file)
        if st:
            seen_seq = st.get("seq")
            node.apply(st)
    if node.transport != "down":
        srv.up()
    if a.state_file:
        write_json(a.state_file + ".pid", {"pid": os.getpid()})
    print("factomd-sim ready port=%d pid=%d name=%s%s" % (srv.port, os.getpid(), node.name,
                                                        " tls" if tls else ""), flush=True)
    while True:
        # Sleep until a control command, a timed outage's end, or a second
        # (a state file written by something other than ctl is seen then).
        wait = 1.0
        if node.down_until:
            wait = max(0.0, min(wait, node.down_until - time.monotonic()))
        select.select([node.wake_r], [], [], wait)
        try:
            os.read(node.wake_r, 4096)
        except BlockingIOError:
            pass
        if stop.is_set():
            break
        if a.state_file and file_id(a.state_file) != seen_id:
            seen_id = file_id(a.state_file)
            st = read_state(a.state_file)
            if st and st.get("seq") != seen_seq:
                seen_seq = st.get("seq")
                err = node.apply(st)
                if err:
                    print("factomd-sim: " + err, file=sys.stderr, flush=True)
                write_json(a.state_file + ".ack", {"seq": seen_seq, "error": err})
        if node.down_until and time.monotonic() >= node.down_until:
            node.apply({"mode": "normal"})
        if node.transport == "down":
            srv.down()
        else:
            srv.up()
    srv.down()
    if a.state_file:
        try:
            os.unlink(a.state_file + ".pid")
        except OSError:
            pass
    return 0


def wake_simulator(state_file):
    """SIGUSR1 to the simulator serving state_file. The pid file can be stale
    and SIGUSR1 ends a process that does not catch it, so only a simulator
    gets it (any simulator just looks at its own file again)."""
    try:
        pid = int(read_state(state_file + ".pid")["pid"])
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
        if any(x.endswith(b"factomd_sim.py") for x in argv[:2]):
            os.kill(pid, signal.SIGUSR1)
    except (TypeError, KeyError, ValueError, OSError):
        pass


def ctl(a):
    cmd = {"mode": a.mode}
    for k in ("delay_ms", "for_ms", "size_bytes", "leaderheight", "blocktime_seconds", "role",
              "minute", "behind_blocks", "sync_blocks_per_second", "version"):
        v = getattr(a, k)
        if v is not None:
            cmd[k] = v
    if a.chunked:
        cmd["chunked"] = True
    if a.state_file:
        cmd["seq"] = "%d.%d" % (os.getpid(), time.monotonic_ns())
        write_json(a.state_file, cmd)
        wake_simulator(a.state_file)  # else it reads the file within a second
        deadline = time.monotonic() + a.wait
        while time.monotonic() < deadline:
            ack = read_state(a.state_file + ".ack")
            if ack and ack.get("seq") == cmd["seq"]:
                if ack.get("error"):
                    print("factomd-sim ctl: " + ack["error"], file=sys.stderr)
                    return 1
                return 0
            time.sleep(0.01)
        print("factomd-sim ctl: no acknowledgement within %.1f s" % a.wait, file=sys.stderr)
        return 1
    import urllib.request  # only here: it is slow to import
    req = urllib.request.Request("http://%s:%d/control" % (a.host, a.port),
                                 data=json.dumps(cmd).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=a.wait) as r:
            print(r.read().decode())
        return 0
    except Exception as e:  # noqa: BLE001 - report any failure to the caller
        print("factomd-sim ctl: %s" % e, file=sys.stderr)
        return 1


def main(argv):
    if argv[:1] == ["ctl"]:
        p = argparse.ArgumentParser(prog="factomd_sim.py ctl", description="switch a running simulator")
        p.add_argument("mode", choices=ALL_MODES)
        p.add_argument("--state-file", help="the simulator's state file (works while down)")
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, help="POST /control instead (not while down)")
        p.add_argument("--delay-ms", type=int)
        p.add_argument("--for-ms", type=int, help="down: come back by itself after this")
        p.add_argument("--size-bytes", type=int)
        p.add_argument("--chunked", action="store_true", help="oversized: no Content-Length")
        p.add_argument("--leaderheight", type=int)
        p.add_argument("--blocktime-seconds", type=int)
        p.add_argument("--role")
        p.add_argument("--minute", type=int, choices=range(10), help="stalled: at this minute")
        p.add_argument("--behind-blocks", type=int, help="syncing/behind: blocks behind at the start")
        p.add_argument("--sync-blocks-per-second", type=int, help="syncing: DBStates applied per second")
        p.add_argument("--version", help="properties.factomdversion (and whether diagnostics exists)")
        p.add_argument("--wait", type=float, default=3.0)
        a = p.parse_args(argv[1:])
        if not a.state_file and not a.port:
            p.error("give --state-file or --port")
        return ctl(a)
    p = argparse.ArgumentParser(prog="factomd_sim.py", description="simulate one factomd node")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="0 = any free port")
    p.add_argument("--name", default="FNode0")
    p.add_argument("--identity", help="identity chain id (64 hex)")
    p.add_argument("--pubkey", help="block-signing public key (64 hex)")
    p.add_argument("--role", default="Follower", choices=("Leader", "Audit", "Follower"))
    p.add_argument("--authorities", help="JSON file: [{chainid, signingkey, status}, ...]")
    p.add_argument("--blocktime-seconds", type=int, default=600)
    p.add_argument("--height", type=int, default=1000, help="leader height at start")
    p.add_argument("--mode", choices=ALL_MODES)
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    p.add_argument("--state-file", help="control file, read when ctl signals (else every second)")
    p.add_argument("--version", default="6.17.1",
                   help="properties.factomdversion; releases before 6.1.1, 6.2.0, 6.3.0 and 6.3.1 have no diagnostics")
    p.add_argument("--behind-blocks", type=int, default=5, help="syncing/behind: blocks behind at the start")
    p.add_argument("--sync-blocks-per-second", type=int, default=2, help="syncing: DBStates applied per second")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM), as factomd -tls")
    p.add_argument("--tls-key", help="its private key (PEM)")
    a = p.parse_args(argv)
    if a.blocktime_seconds < 10:
        p.error("--blocktime-seconds must be at least 10")
    if bool(a.tls_cert) != bool(a.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if a.sync_blocks_per_second < 1 or a.behind_blocks < 1:
        p.error("--behind-blocks and --sync-blocks-per-second must be at least 1")
    return serve(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
