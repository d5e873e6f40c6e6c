#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A loopback stand-in for Parca's profile store, for kiln's tests and bench:
a real gRPC server (Debian's python3-grpcio) serving
parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw through a generic
handler that takes the raw request bytes and reads them with protowire.
Checks as Parca's NormalizeWriteRawRequest and ValidatePprofProfile do: a
__name__ label, valid and unique label names, a readable pprof. Each series
is saved as N.pb.gz with N.json (labels, metadata); stats.json counts calls.
Faults: --fail-first N --fail-code UNAVAILABLE, --reject-code INVALID_ARGUMENT,
--discard (bench: count only); TLS (ALPN h2) with --tls-cert/--tls-key. Prints "listening PORT" once ready."""
import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protowire  # noqa: E402

SERVICE = "parca.profilestore.v1alpha1.ProfileStoreService"
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def read_write_raw(data):
    """WriteRawRequest{tenant=1, series=2 RawProfileSeries, normalized=3} ->
    (list of (labels list, [raw profiles]), normalized)."""
    series, normalized = [], False
    for number, _, value in protowire.fields(data):
        if number == 2:
            labels, samples = [], []
            for n, _, v in protowire.fields(value):
                if n == 1:  # LabelSet{labels=1 Label{name=1, value=2}}
                    for ln, _, lv in protowire.fields(v):
                        if ln == 1:
                            pair = {k: x for k, _, x in protowire.fields(lv)}
                            labels.append((pair.get(1, b"").decode(),
                                           pair.get(2, b"").decode()))
                elif n == 2:  # RawSample{raw_profile=1, executable_info=2}
                    raw = [x for k, _, x in protowire.fields(v) if k == 1]
                    samples.append(raw[0] if raw else b"")
            series.append((labels, samples))
        elif number == 3:
            normalized = bool(value)
    return series, normalized


class Store:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.calls = self.accepted = self.rejected = self.bytes = 0

    def save_stats(self):
        path = os.path.join(self.args.out, "stats.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"requests": self.calls, "accepted": self.accepted,
                       "rejected": self.rejected, "bytes": self.bytes}, f)
        os.replace(path + ".tmp", path)

    def write_raw(self, request, context):
        args = self.args
        with self.lock:
            self.calls += 1
            number = self.calls
            self.save_stats()
        if number <= args.fail_first:
            context.abort(getattr(grpc.StatusCode, args.fail_code),
                          "ingester unavailable (test fault)")
        if args.reject_code:
            context.abort(getattr(grpc.StatusCode, args.reject_code),
                          "invalid profile: the test server rejects everything")
        if args.discard:
            with self.lock:
                self.accepted += 1
                self.bytes += len(request)
                self.save_stats()
            return b""
        try:
            series, normalized = read_write_raw(request)
            error = None if series else "no series"
            for labels, samples in series:
                names = [name for name, _ in labels]
                if "__name__" not in names:
                    error = "missing __name__ label"
                for name in names:
                    if name != "__name__" and not LABEL_NAME.match(name):
                        error = f"invalid label name: {name}"
                if len(set(names)) != len(names):
                    error = "duplicate label name"
                for raw in samples:
                    error = error or protowire.validate_profile(protowire.read_profile(raw))
        except (ValueError, UnicodeDecodeError, OSError, EOFError) as e:
            error = f"failed to parse request: {e}"
        if error:
            with self.lock:
                self.rejected += 1
                self.save_stats()
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, error)
        metadata = {k: v for k, v in context.invocation_metadata()}
        with self.lock:
            for labels, samples in series:
                for raw in samples:
                    self.accepted += 1
                    self.bytes += len(raw)
                    name = os.path.join(args.out, f"{self.accepted:06d}")
                    with open(name + ".pb.gz", "wb") as f:
                        f.write(raw)
                    with open(name + ".json", "w") as f:
                        json.dump({"labels": dict(labels), "normalized": normalized,
                                   "headers": metadata, "received": time.time()}, f)
            self.save_stats()
        return b""  # an empty WriteRawResponse


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--fail-code", default="UNAVAILABLE")
    parser.add_argument("--reject-code", default="")
    parser.add_argument("--discard", action="store_true")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    store = Store(args)
    store.save_stats()
    # No (de)serializers: the handler gets and returns raw bytes.
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"WriteRaw": grpc.unary_unary_rpc_method_handler(store.write_raw)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.max_receive_message_length", 64 << 20)])
    server.add_generic_rpc_handlers((handler,))
    if args.tls_cert:
        with open(args.tls_key, "rb") as key, open(args.tls_cert, "rb") as cert:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        port = server.add_secure_port(f"127.0.0.1:{args.port}", credentials)
    else:
        port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print("listening", port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop(0)


if __name__ == "__main__":
    main()
