#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A hostile backend on loopback, for kiln's push tests: it answers every
request with one fault, chosen by --fault.

HTTP/1.1 (Python's http.server):
  huge-body         200, then 100 MiB of body without a Content-Length
  huge-length       200 with "Content-Length: 104857600", then that body
  huge-headers      200 with 1 MiB of headers
  trickle           the status line, then one byte of a header a second, forever
  redirect          --status (307) with "Location: --location"
HTTP/2 with prior knowledge (python3-h2's state machine on a plain socket),
a gRPC answer (200, application/grpc, an empty message) whose trailers are:
  grpc-status-text     "grpc-status: OK" (not a number)
  grpc-status-missing  no grpc-status, only a grpc-message
  grpc-status-twice    "grpc-status: 0" then "grpc-status: 13"
  grpc-message-huge    "grpc-status: 0" with a grpc-message of --message-bytes (1 MiB)
  trailers-many        "grpc-status: 0" and eight 10 KB trailers (80 KB in all)
  trailer-bad-name     "grpc-status: 0" and a header whose name has upper case and a space
  trailer-pseudo       ":status: 200" (a pseudo-header, not allowed in trailers), grpc-status 0

stats.json in --out counts requests (with the first one's time) and the
body and header bytes sent. Prints
"listening PORT" once ready."""
import argparse
import json
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import h2.config
import h2.connection
import h2.events
import h2.exceptions

HTTP1_FAULTS = ("huge-body", "huge-length", "huge-headers", "trickle", "redirect")
HTTP2_FAULTS = ("grpc-status-text", "grpc-status-missing", "grpc-status-twice",
                "grpc-message-huge", "trailers-many", "trailer-bad-name", "trailer-pseudo")
HUGE = 100 << 20
CHUNK = 64 << 10


class Stats:
    def __init__(self, out):
        self.path = os.path.join(out, "stats.json")
        self.lock = threading.Lock()
        self.requests = self.body_bytes_sent = self.header_bytes_sent = 0
        self.first_request_at = None  # Unix time
        self.save()

    def add(self, **counts):
        with self.lock:
            if counts.get("requests") and self.first_request_at is None:
                self.first_request_at = time.time()
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)
            self.save()

    def save(self):
        with open(self.path + ".tmp", "w") as f:
            json.dump({"requests": self.requests, "body_bytes_sent": self.body_bytes_sent,
                       "header_bytes_sent": self.header_bytes_sent,
                       "first_request_at": self.first_request_at}, f)
        os.replace(self.path + ".tmp", self.path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        args, stats = self.server.args, self.server.stats
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        stats.add(requests=1)
        try:
            getattr(self, "fault_" + args.fault.replace("-", "_"))(args, stats)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up: what the test wants
        self.close_connection = True

    def stream_body(self, stats):
        block = b"x" * CHUNK
        for _ in range(HUGE // CHUNK):
            self.wfile.write(block)
            stats.add(body_bytes_sent=len(block))

    def fault_huge_body(self, args, stats):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Connection: close\r\n\r\n")
        self.stream_body(stats)

    def fault_huge_length(self, args, stats):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d\r\n\r\n" % HUGE)
        self.stream_body(stats)

    def fault_huge_headers(self, args, stats):
        line = b"X-Filler-%06d: " + b"y" * 100 + b"\r\n"
        headers = b"".join(line % i for i in range((1 << 20) // len(line)))
        self.wfile.write(b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 0\r\n\r\n")
        stats.add(header_bytes_sent=len(headers))

    def fault_trickle(self, args, stats):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        self.wfile.flush()
        while not self.server.stopping.wait(1):
            self.wfile.write(b"z")
            self.wfile.flush()
            stats.add(header_bytes_sent=1)

    def fault_redirect(self, args, stats):
        body = b"moved"
        self.send_response(args.status)
        self.send_header("Location", args.location)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def grpc_trailers(fault, args):
    if fault == "grpc-status-text":
        return [("grpc-status", "OK")]
    if fault == "grpc-status-missing":
        return [("grpc-message", "where is my status")]
    if fault == "grpc-status-twice":
        return [("grpc-status", "0"), ("grpc-status", "13")]
    if fault == "grpc-message-huge":
        return [("grpc-status", "0"), ("grpc-message", "m" * args.message_bytes)]
    if fault == "trailers-many":
        return [("grpc-status", "0")] + [(f"x-filler-{i}", "f" * 10000) for i in range(8)]
    if fault == "trailer-bad-name":
        return [("grpc-status", "0"), ("Bad Name", "x")]
    if fault == "trailer-pseudo":
        return [(":status", "200"), ("grpc-status", "0")]
    raise ValueError(fault)


def serve_http2(sock, args, stats, stopping):
    """One connection: answers each request, once its body has arrived, with the fault."""
    config = h2.config.H2Configuration(client_side=False, validate_outbound_headers=False,
                                       normalize_outbound_headers=False)
    conn = h2.connection.H2Connection(config=config)
    # Huffman-coding a 1 MiB value in Python takes seconds: send it as it is.
    encode = conn.encoder.encode
    conn.encoder.encode = lambda headers, huffman=False: encode(headers, huffman=False)
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    sock.settimeout(1)
    while not stopping.is_set():
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return
        if not data:
            return
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                stats.add(requests=1)
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                stream = event.stream_id
                conn.send_headers(stream, [(":status", "200"),
                                           ("content-type", "application/grpc")])
                conn.send_data(stream, b"\0\0\0\0\0")  # an empty WriteRawResponse
                conn.send_headers(stream, grpc_trailers(args.fault, args), end_stream=True)
        try:
            sock.sendall(conn.data_to_send())
        except OSError:
            return


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fault", required=True, choices=HTTP1_FAULTS + HTTP2_FAULTS)
    parser.add_argument("--status", type=int, default=307)
    parser.add_argument("--location", default="")
    parser.add_argument("--message-bytes", type=int, default=1 << 20)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    stats = Stats(args.out)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    if args.fault in HTTP1_FAULTS:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
        server.daemon_threads = True
        server.args, server.stats, server.stopping = args, stats, stopping
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print("listening", server.server_address[1], flush=True)
        stopping.wait()
        server.shutdown()
        return
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(16)
    listener.settimeout(1)
    print("listening", listener.getsockname()[1], flush=True)
    while not stopping.is_set():
        try:
            sock, _ = listener.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve_http2, args=(sock, args, stats, stopping),
                         daemon=True).start()
    time.sleep(0.1)


if __name__ == "__main__":
    main()
