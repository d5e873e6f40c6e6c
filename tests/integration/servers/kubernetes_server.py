# SPDX-License-Identifier: Apache-2.0
"""A stand-in for the Kubernetes API server's pods endpoint, for kiln's
tests: no real API server runs here, so this one speaks its protocol and
JSON as the real one does, for what kiln asks of it:

  GET /api/v1/pods?fieldSelector=spec.nodeName=NODE&limit=N[&continue=T]
      a PodList page: {"kind": "PodList", "metadata": {"resourceVersion",
      "continue"}, "items": [...]}
  GET /api/v1/pods?fieldSelector=...&watch=1&resourceVersion=RV
                  [&allowWatchBookmarks=true][&timeoutSeconds=S]
      a chunked stream of one JSON event a line, {"type": "ADDED" |
      "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR", "object": ...}: the
      events after RV, then each new one as it happens; an RV older than
      the history kept gets an ERROR event with a 410 Status, as etcd's
      compaction makes the real server send.

over HTTPS (a certificate the test's CA signed), with a bearer token
checked on every request (401 Status otherwise). The test drives it in
process: add, modify or delete pods, fail the next lists, break the open
watches, forget the history."""
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def make_pod(name, namespace, uid, node, labels=None, annotations=None, containers=(),
             qos="BestEffort", owner=None):
    """A Pod as the API serves it; containers are (name, "runtime://ID")."""
    pod = {
        "metadata": {"name": name, "namespace": namespace, "uid": uid,
                     "labels": dict(labels or {}), "annotations": dict(annotations or {}),
                     "creationTimestamp": "2026-12-03T10:00:00Z"},
        "spec": {"nodeName": node, "containers": [{"name": n, "image": f"example/{n}:1"}
                                                  for n, _ in containers]},
        "status": {"phase": "Running", "podIP": "10.244.0.7", "qosClass": qos,
                   "containerStatuses": [{"name": n, "containerID": cid, "ready": True,
                                          "restartCount": 0, "image": f"example/{n}:1"}
                                         for n, cid in containers]},
    }
    if owner:
        pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0],
                                               "name": owner[1], "uid": uid[::-1],
                                               "controller": True}]
    return pod


class KubernetesServer:
    def __init__(self, cert, key, token, history=1000):
        self.token = token
        self.lock = threading.Condition()
        self.pods = {}  # uid -> pod
        self.version = 100
        self.events = []  # (version, type, pod)
        self.history = history
        self.failing_lists = 0
        self.generation = 0  # bumped to break the open watches
        self.endings = 0  # bumped to end them as the server does at timeoutSeconds
        self.requests = []  # (kind, query, authorized)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        with self.lock:
            self.generation += 1
            self.lock.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    # What the test does.
    def _event(self, kind, pod):
        self.version += 1
        pod = json.loads(json.dumps(pod))
        pod["metadata"]["resourceVersion"] = str(self.version)
        self.events.append((self.version, kind, pod))
        del self.events[:-self.history]
        self.lock.notify_all()
        return pod

    def add(self, pod):
        with self.lock:
            self.pods[pod["metadata"]["uid"]] = self._event("ADDED", pod)

    def modify(self, pod):
        with self.lock:
            self.pods[pod["metadata"]["uid"]] = self._event("MODIFIED", pod)

    def delete(self, uid):
        with self.lock:
            self._event("DELETED", self.pods.pop(uid))

    def fail_lists(self, count):
        with self.lock:
            self.failing_lists = count

    def break_watches(self):
        with self.lock:
            self.generation += 1
            self.lock.notify_all()

    def end_watches(self):
        """Ends the open watches cleanly, as the server does at their timeoutSeconds."""
        with self.lock:
            self.endings += 1
            self.lock.notify_all()

    def forget_history(self):
        """As etcd compacts: a new watch from any version seen so far gets 410."""
        with self.lock:
            self.events.clear()
            self.version += 1

    def count(self, kind):
        with self.lock:
            return sum(1 for k, _, ok in self.requests if k == kind and ok)

    # The protocol.
    def _send_json(self, handler, code, body):
        data = json.dumps(body, separators=(",", ":")).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def handle(self, handler):
        url = urlparse(handler.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        watch = query.get("watch") in ("1", "true")
        authorized = handler.headers.get("Authorization") == f"Bearer {self.token}"
        with self.lock:
            self.requests.append(("watch" if watch else "list", query, authorized))
        if not authorized:
            return self._send_json(handler, 401, status(401, "Unauthorized", "Unauthorized"))
        if url.path != "/api/v1/pods":
            return self._send_json(handler, 404, status(404, "NotFound",
                                                        "the server could not find the "
                                                        "requested resource"))
        selector = query.get("fieldSelector", "")
        node = selector[len("spec.nodeName="):] if selector.startswith("spec.nodeName=") \
            else None
        if selector and node is None:
            return self._send_json(handler, 400, status(400, "BadRequest",
                                                        f"unsupported selector {selector}"))

        def on_node(pod):
            return node is None or pod["spec"].get("nodeName") == node
        if watch:
            return self._watch(handler, query, on_node)
        with self.lock:
            if self.failing_lists:
                self.failing_lists -= 1
                failing = True
            else:
                failing = False
                pods = sorted((p for p in self.pods.values() if on_node(p)),
                              key=lambda p: p["metadata"]["uid"])
                version = self.version
        if failing:
            return self._send_json(handler, 500, status(500, "InternalError",
                                                        "etcdserver: request timed out"))
        limit = int(query.get("limit", "0") or 0)
        start = int(query.get("continue", "0") or 0)
        end = start + limit if limit else len(pods)
        metadata = {"resourceVersion": str(version)}
        if end < len(pods):
            metadata["continue"] = str(end)
        self._send_json(handler, 200, {"kind": "PodList", "apiVersion": "v1",
                                       "metadata": metadata, "items": pods[start:end]})

    def _watch(self, handler, query, on_node):
        since = int(query.get("resourceVersion", "0") or 0)
        deadline = time.monotonic() + int(query.get("timeoutSeconds", "1800"))
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def send(event):
            data = (json.dumps(event, separators=(",", ":")) + "\n").encode()
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            handler.wfile.flush()
        with self.lock:
            generation, endings = self.generation, self.endings
            oldest = self.events[0][0] if self.events else self.version + 1
            expired = since < oldest - 1 and since < self.version
        try:
            if expired:
                send({"type": "ERROR", "object": status(
                    410, "Expired", f"too old resource version: {since} ({self.version})")})
                return handler.wfile.write(b"0\r\n\r\n")
            while time.monotonic() < deadline:
                with self.lock:
                    new = [(v, t, p) for v, t, p in self.events if v > since]
                    if not new and self.generation == generation and \
                            self.endings == endings:
                        self.lock.wait(0.5)
                        new = [(v, t, p) for v, t, p in self.events if v > since]
                    broken = self.generation != generation
                    ended = self.endings != endings
                for version, kind, pod in new:
                    since = version
                    if on_node(pod):
                        send({"type": kind, "object": pod})
                if broken:
                    # A connection cut mid-stream: no terminating chunk.
                    handler.close_connection = True
                    return
                if ended:
                    break
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            handler.close_connection = True
