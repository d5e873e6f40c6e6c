#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A loopback OTLP profiles receiver, for kiln's tests and bench, speaking
both transports of opentelemetry-proto's ProfilesService as a Collector
does: OTLP/HTTP (POST /v1development/profiles, application/x-protobuf,
gzip or not; errors as a google.rpc.Status) on --transport http, OTLP/gRPC
(a real grpcio server, gzip-compressed messages decompressed by grpc) on
--transport grpc. Requests are decoded with Python's protobuf (Debian's)
from classes protoc (Debian's) generates from kiln's proto/*.proto. Each
request is saved as N.bin (the uncompressed bytes), N.json (the request
as protobuf's JSON mapping, headers, transport) and counted in stats.json.
Faults: --fail-first N (HTTP 503 / UNAVAILABLE), --reject (HTTP 400 /
INVALID_ARGUMENT, with a message), --partial N (accepted with a
partial_success of N rejected profiles), --discard (bench: count only).
TLS with --tls-cert/--tls-key. --dump-fields prints every message's field
numbers as JSON and exits. Prints "listening PORT" once ready."""
import argparse
import gzip
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
PROTOS = ["proto/otlp_common.proto", "proto/otlp_resource.proto", "proto/otlp_profiles.proto",
          "proto/otlp_profiles_service.proto", "proto/rpc_status.proto"]
SERVICE = "opentelemetry.proto.collector.profiles.v1development.ProfilesService"


def load_schema():
    """kiln's .proto files compiled by protoc into a temporary package, imported."""
    out = tempfile.mkdtemp(prefix="kiln-otlp-proto-")
    subprocess.run(["protoc", "-I", ROOT, "--python_out", out] + PROTOS, check=True, cwd=ROOT)
    sys.path.insert(0, out)
    from proto import otlp_profiles_service_pb2, rpc_status_pb2  # noqa: E402
    return otlp_profiles_service_pb2, rpc_status_pb2


service_pb2, status_pb2 = load_schema()


def dump_fields():
    """{full message name: {field name: number}} of every message kiln's schema defines."""
    from google.protobuf import descriptor_pool
    pool = descriptor_pool.Default()
    out = {}
    for path in PROTOS:
        fd = pool.FindFileByName(path)
        stack = list(fd.message_types_by_name.values())
        while stack:
            message = stack.pop()
            out[message.full_name] = {f.name: f.number for f in message.fields}
            stack.extend(message.nested_types)
    print(json.dumps(out, sort_keys=True))


class Store:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.calls = self.accepted = self.rejected = self.bytes = self.wire_bytes = 0

    def save_stats(self):
        path = os.path.join(self.args.out, "stats.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"requests": self.calls, "accepted": self.accepted,
                       "rejected": self.rejected, "bytes": self.bytes,
                       "wire_bytes": self.wire_bytes}, f)
        os.replace(path + ".tmp", path)

    def begin(self, wire_bytes):
        """Counts a request; its fault, if it gets one: None, "fail" or "reject"."""
        with self.lock:
            self.calls += 1
            self.wire_bytes += wire_bytes
            number = self.calls
            self.save_stats()
        if number <= self.args.fail_first:
            return "fail"
        if self.args.reject:
            with self.lock:
                self.rejected += 1
                self.save_stats()
            return "reject"
        return None

    def keep(self, data, headers, transport):
        """Decodes and saves one request; returns the response message."""
        from google.protobuf import json_format
        request = service_pb2.ExportProfilesServiceRequest.FromString(data)
        with self.lock:
            self.accepted += 1
            self.bytes += len(data)
            number = self.accepted
            if not self.args.discard:
                name = os.path.join(self.args.out, f"{number:06d}")
                with open(name + ".bin", "wb") as f:
                    f.write(data)
                with open(name + ".json", "w") as f:
                    json.dump({"transport": transport, "headers": headers, "bytes": len(data),
                               "received": time.time(),
                               "request": json_format.MessageToDict(
                                   request, preserving_proto_field_name=True)}, f)
            self.save_stats()
        response = service_pb2.ExportProfilesServiceResponse()
        if self.args.partial:
            response.partial_success.rejected_profiles = self.args.partial
            response.partial_success.error_message = "test server: some profiles dropped"
        return response


REJECT_MESSAGE = "invalid profile: the test server rejects everything"


def serve_http(store, args):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def answer(self, status, message, content_type="application/x-protobuf"):
            body = message.SerializeToString()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            fault = store.begin(len(body))
            if self.path != "/v1development/profiles":
                self.answer(404, status_pb2.Status(code=5, message="no such path"))
                return
            if fault == "fail":
                self.answer(503, status_pb2.Status(code=14, message="unavailable (test fault)"))
                return
            if fault == "reject":
                self.answer(400, status_pb2.Status(code=3, message=REJECT_MESSAGE))
                return
            try:
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.headers.get("Content-Type") != "application/x-protobuf":
                    raise ValueError("Content-Type is not application/x-protobuf")
                response = store.keep(body, {k.lower(): v for k, v in self.headers.items()},
                                      "http")
            except Exception as e:  # noqa: BLE001 - any bad request is a 400
                self.answer(400, status_pb2.Status(code=3, message=f"bad request: {e}"))
                return
            self.answer(200, response)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1], server.shutdown


def serve_grpc(store, args):
    import grpc

    def export(data, context):
        fault = store.begin(len(data))
        if fault == "fail":
            context.abort(grpc.StatusCode.UNAVAILABLE, "unavailable (test fault)")
        if fault == "reject":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, REJECT_MESSAGE)
        headers = {k: v for k, v in context.invocation_metadata()}
        try:
            return store.keep(data, headers, "grpc").SerializeToString()
        except Exception as e:  # noqa: BLE001
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad request: {e}")

    # Raw bytes in and out: grpc has decompressed the message already.
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(export)})
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
    return port, lambda: server.stop(0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=("http", "grpc"), default="http")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out")
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--reject", action="store_true")
    parser.add_argument("--partial", type=int, default=0)
    parser.add_argument("--discard", action="store_true")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--dump-fields", action="store_true")
    args = parser.parse_args()
    if args.dump_fields:
        dump_fields()
        return
    os.makedirs(args.out, exist_ok=True)
    store = Store(args)
    store.save_stats()
    port, shutdown = (serve_grpc if args.transport == "grpc" else serve_http)(store, args)
    print("listening", port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    shutdown()


if __name__ == "__main__":
    main()
