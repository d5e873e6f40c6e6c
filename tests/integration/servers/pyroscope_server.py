#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A loopback stand-in for Pyroscope's ingestion API, for kiln's tests and
bench: POST /ingest?name=SERVICE{k=v,...}&from=&until=&format=pprof with the
pprof as the body, validated as Pyroscope validates it (name syntax, label
names, service name characters, sample types without '-', UTF-8 strings).
Each accepted profile is saved as N.pb.gz with N.json (labels, from, until,
headers); stats.json counts requests. Faults on request:
  --fail-first N --fail-status S   the first N requests get status S
  --hang-first N                   the first N requests get no answer at all
  --reject-status S                every request gets status S
  --discard                        count only (bench): no validation, no files
HTTPS with --tls-cert/--tls-key, requiring client certificates signed by
--client-ca when given. Prints "listening PORT" once ready."""
import argparse
import json
import os
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protowire  # noqa: E402

LABEL_NAME = re.compile(r"^[a-zA-Z0-9_.]+$")
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9_.\-/]+$")


def parse_name(name):
    """Pyroscope's labelset.Parse: SERVICE{key=value,...}; returns (labels, error)."""
    if "{" not in name:
        name += "{}"
    service, rest = name.split("{", 1)
    service = service.strip()
    if not SERVICE_NAME.match(service):
        return None, f"invalid service name: {service!r}"
    labels = {"__name__": service}
    body = rest.split("}", 1)[0]
    for pair in filter(None, body.split(",")):
        if "=" not in pair:
            return None, f"invalid label set: {pair!r}"
        key, value = (part.strip() for part in pair.split("=", 1))
        if key != "__name__" and not LABEL_NAME.match(key):
            return None, f"invalid label name: {key!r}"
        if key in labels and key != "__name__":
            return None, f"duplicate label name: {key!r}"
        labels[key] = value
    if "service_name" in labels and not SERVICE_NAME.match(labels["service_name"]):
        return None, "service name is not provided"
    return labels, None


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.requests = self.accepted = self.rejected = self.bytes = 0
        self.stop = threading.Event()

    def save_stats(self):
        path = os.path.join(self.args.out, "stats.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"requests": self.requests, "accepted": self.accepted,
                       "rejected": self.rejected, "bytes": self.bytes}, f)
        os.replace(path + ".tmp", path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def client_cert_cn(self):
        getpeercert = getattr(self.connection, "getpeercert", None)
        cert = getpeercert() if getpeercert else None
        for field in (cert or {}).get("subject", ()):
            for key, value in field:
                if key == "commonName":
                    return value
        return None

    def do_POST(self):
        state = self.server.state
        args = state.args
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with state.lock:
            state.requests += 1
            number = state.requests
            state.save_stats()
        url = urlparse(self.path)
        if url.path != "/ingest":
            return self.reply(404, "404 page not found")
        if number <= args.hang_first:
            state.stop.wait(3600)  # never answers while the test runs
            return
        if number <= args.fail_first:
            return self.reply(args.fail_status, "ingester unavailable (test fault)")
        if args.reject_status:
            return self.reply(args.reject_status,
                              "invalid profile: the test server rejects everything")
        if args.discard:
            with state.lock:
                state.accepted += 1
                state.bytes += len(body)
                state.save_stats()
            return self.reply(200, "")
        query = parse_qs(url.query)
        labels, error = parse_name(query.get("name", [""])[0])
        if not error and query.get("format") != ["pprof"]:
            error = "format must be pprof"
        try:
            window = (int(query["from"][0]), int(query["until"][0]))
        except (KeyError, ValueError):
            error = error or "from and until must be Unix seconds"
        if not error:
            try:
                error = protowire.validate_profile(protowire.read_profile(body))
            except (ValueError, OSError, EOFError) as e:
                error = f"failed to parse pprof: {e}"
        if error:
            with state.lock:
                state.rejected += 1
                state.save_stats()
            return self.reply(400, error)
        with state.lock:
            state.accepted += 1
            state.bytes += len(body)
            name = os.path.join(args.out, f"{state.accepted:06d}")
            with open(name + ".pb.gz", "wb") as f:
                f.write(body)
            with open(name + ".json", "w") as f:
                json.dump({"labels": labels, "from": window[0], "until": window[1],
                           "spy": query.get("spyName", [""])[0],
                           "headers": {k.lower(): v for k, v in self.headers.items()},
                           "client_cert": self.client_cert_cn(),
                           "received": time.time()}, f)
            state.save_stats()
        self.reply(200, "")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--fail-status", type=int, default=503)
    parser.add_argument("--hang-first", type=int, default=0)
    parser.add_argument("--reject-status", type=int, default=0)
    parser.add_argument("--discard", action="store_true")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--client-ca")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            context.load_verify_locations(args.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    server.state = State(args)
    server.state.save_stats()
    print("listening", server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.state.stop.set()


if __name__ == "__main__":
    main()
