#!/usr/bin/env python3
"""bundle_server.py: serves signed bundle directories over HTTP for the update
tests, well or badly. Usage: bundle_server.py PORT ROOT

GET /<mode>/<bundle>/<file> serves ROOT/<bundle>/<file>. MANIFEST.json and its
.minisig files are always served as they are; every other file according to
<mode>:
  ok     as it is
  wrong  the same length, one byte changed
  trunc  announces the full Content-Length, sends half, closes
  big    the file followed by 2 MiB more
  slow   waits 5 s before answering
  404    HTTP 404
  500    HTTP 500
  m500   HTTP 500 for every file, MANIFEST.json and signatures too
  mbig   MANIFEST.json followed by 1 MiB of spaces
  sbig   every .minisig file followed by 1 MiB of spaces
Binds 127.0.0.1 only. Stdlib only."""
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("bundle_server: " + (fmt % args) + "\n")

    def send_body(self, code, body, length=None):
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        parts = self.path.split("?")[0].lstrip("/").split("/", 1)
        if len(parts) != 2 or ".." in parts[1].split("/"):
            return self.send_body(400, b"bad path\n")
        mode, rel = parts
        path = os.path.join(ROOT, rel)
        if not os.path.isfile(path):
            return self.send_body(404, b"not found\n")
        with open(path, "rb") as f:
            data = f.read()
        name = os.path.basename(rel)
        if mode == "m500":
            return self.send_body(500, b"internal error\n")
        if mode == "mbig" and name == "MANIFEST.json":
            return self.send_body(200, data + b" " * (1024 * 1024))
        if mode == "sbig" and name.startswith("MANIFEST.json") and name != "MANIFEST.json":
            return self.send_body(200, data + b" " * (1024 * 1024))
        if name.startswith("MANIFEST.json") or mode == "ok":
            return self.send_body(200, data)
        if mode == "wrong":
            b = bytearray(data or b"x")
            b[len(b) // 2] ^= 0x01
            return self.send_body(200, bytes(b))
        if mode == "trunc":
            self.send_body(200, data[: len(data) // 2], length=len(data))
            self.close_connection = True
            return None
        if mode == "big":
            return self.send_body(200, data + b"-" * (2 * 1024 * 1024))
        if mode == "slow":
            time.sleep(5)
            return self.send_body(200, data)
        if mode == "404":
            return self.send_body(404, b"not found\n")
        if mode == "500":
            return self.send_body(500, b"internal error\n")
        return self.send_body(400, b"unknown mode\n")


def main():
    global ROOT
    port, ROOT = int(sys.argv[1]), sys.argv[2]
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    sys.stderr.write("bundle_server: listening on 127.0.0.1:%d\n" % port)
    sys.stderr.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
