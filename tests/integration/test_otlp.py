# SPDX-License-Identifier: Apache-2.0
"""Pushing OTLP profiles (opentelemetry-proto v1.11.0's profiles signal) to a
receiver on loopback that speaks both transports (servers/otlp_server.py:
http.server for OTLP/HTTP, grpcio for OTLP/gRPC; decoded with Debian's
protobuf from classes protoc generates from kiln's .proto files). kiln's
schema is checked field by field against the release's numbers recorded
here; every request passes a validator written from the specification; its
stacks, read back, equal the pprof files kiln wrote for the same windows
(read with `go tool pprof`). Then the faults the other protocols survive:
an outage, TLS, a 400 with a message, a partial success."""
import collections
import json
import os
import re
import signal
import subprocess
import threading
import time

from kilntest import (KILN, check, finish, make_certificates, prog, require_root, start, stop,
                      tmpdir, wait_for)
from test_push import DEBIAN_PYTHON, free_port, local_windows, run_kiln, upload_counters

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "servers", "otlp_server.py")

# opentelemetry-proto v1.11.0, field for field (profiles.proto, profiles_service.proto,
# common.proto, resource.proto), and googleapis' google/rpc/status.proto (code, message).
PROFILES = "opentelemetry.proto.profiles.v1development."
COLLECTOR = "opentelemetry.proto.collector.profiles.v1development."
COMMON = "opentelemetry.proto.common.v1."
RELEASE_FIELDS = {
    PROFILES + "ProfilesDictionary": {"mapping_table": 1, "location_table": 2,
                                      "function_table": 3, "link_table": 4, "string_table": 5,
                                      "attribute_table": 6, "stack_table": 7},
    PROFILES + "ProfilesData": {"resource_profiles": 1, "dictionary": 2},
    PROFILES + "ResourceProfiles": {"resource": 1, "scope_profiles": 2, "schema_url": 3},
    PROFILES + "ScopeProfiles": {"scope": 1, "profiles": 2, "schema_url": 3},
    PROFILES + "Profile": {"sample_type": 1, "samples": 2, "time_unix_nano": 3,
                           "duration_nano": 4, "period_type": 5, "period": 6, "profile_id": 7,
                           "dropped_attributes_count": 8, "original_payload_format": 9,
                           "original_payload": 10, "attribute_indices": 11},
    PROFILES + "Link": {"trace_id": 1, "span_id": 2},
    PROFILES + "ValueType": {"type_strindex": 1, "unit_strindex": 2},
    PROFILES + "Sample": {"stack_index": 1, "attribute_indices": 2, "link_index": 3,
                          "values": 4, "timestamps_unix_nano": 5},
    PROFILES + "Mapping": {"memory_start": 1, "memory_limit": 2, "file_offset": 3,
                           "filename_strindex": 4, "attribute_indices": 5},
    PROFILES + "Stack": {"location_indices": 1},
    PROFILES + "Location": {"mapping_index": 1, "address": 2, "lines": 3,
                            "attribute_indices": 4},
    PROFILES + "Line": {"function_index": 1, "line": 2, "column": 3},
    PROFILES + "Function": {"name_strindex": 1, "system_name_strindex": 2,
                            "filename_strindex": 3, "start_line": 4},
    PROFILES + "KeyValueAndUnit": {"key_strindex": 1, "value": 2, "unit_strindex": 3},
    COLLECTOR + "ExportProfilesServiceRequest": {"resource_profiles": 1, "dictionary": 2},
    COLLECTOR + "ExportProfilesServiceResponse": {"partial_success": 1},
    COLLECTOR + "ExportProfilesPartialSuccess": {"rejected_profiles": 1, "error_message": 2},
    COMMON + "AnyValue": {"string_value": 1, "bool_value": 2, "int_value": 3,
                          "double_value": 4, "array_value": 5, "kvlist_value": 6,
                          "bytes_value": 7, "string_value_strindex": 8},
    COMMON + "ArrayValue": {"values": 1},
    COMMON + "KeyValueList": {"values": 1},
    COMMON + "KeyValue": {"key": 1, "value": 2, "key_strindex": 3},
    COMMON + "InstrumentationScope": {"name": 1, "version": 2, "attributes": 3,
                                      "dropped_attributes_count": 4},
    COMMON + "EntityRef": {"schema_url": 1, "type": 2, "id_keys": 3, "description_keys": 4},
    "opentelemetry.proto.resource.v1.Resource": {"attributes": 1,
                                                 "dropped_attributes_count": 2,
                                                 "entity_refs": 3},
    "google.rpc.Status": {"code": 1, "message": 2},
}

# Semantic conventions' names kiln sends; the rest of a resource's keys come from relabeling.
RESOURCE_REQUIRED = {"service.name", "host.name", "process.pid", "process.executable.name"}
SAMPLE_ATTRIBUTES = {"thread.id", "thread.name", "kiln.off_cpu.state"}
BUILD_ID = "process.executable.build_id.gnu"
OFF_CPU_STATES = {"sleeping", "uninterruptible", "preempted"}


class OtlpServer:
    def __init__(self, transport, *args, port=0):
        self.out = tmpdir("kiln-otlp-server-")
        self.proc = subprocess.Popen([DEBIAN_PYTHON, SERVER, "--transport", transport, "--out",
                                      self.out, "--port", str(port)] + list(args),
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            raise RuntimeError(f"OTLP {transport} server did not start: {line}")
        self.port = int(line[1])
        self.url = f"{'https' if '--tls-cert' in args else 'http'}://127.0.0.1:{self.port}"

    def stats(self):
        try:
            with open(os.path.join(self.out, "stats.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {"requests": 0, "accepted": 0, "rejected": 0}

    def received(self):
        out = []
        for name in sorted(os.listdir(self.out)):
            if name.endswith(".json") and name != "stats.json":
                with open(os.path.join(self.out, name)) as f:
                    out.append(json.load(f))
        return out

    def stop(self):
        stop(self.proc, signal.SIGTERM)


def any_value(value):
    """An AnyValue as protobuf's JSON mapping writes it: a string, an int, or None."""
    if value is None:
        return None
    if "string_value" in value:
        return value["string_value"]
    if "int_value" in value:
        return int(value["int_value"])
    return value


def validate(request):
    """What the specification requires of a request, as a list of errors."""
    errors = []
    d = request.get("dictionary", {})
    tables = {name: d.get(name, []) for name in RELEASE_FIELDS[PROFILES + "ProfilesDictionary"]}
    for name, table in tables.items():
        if not table:
            errors.append(f"{name} is empty: element 0 must be the zero value")
        elif table[0] not in ({}, ""):
            errors.append(f"{name}[0] is not the zero value: {table[0]}")
    strings = tables["string_table"]

    def in_range(what, index, table, allow_zero=True):
        index = int(index)
        if index < 0 or index >= len(tables[table]) or (index == 0 and not allow_zero):
            errors.append(f"{what}: index {index} out of {table} ({len(tables[table])})")

    def string(index):
        index = int(index)
        return strings[index] if 0 <= index < len(strings) else None

    for i, m in enumerate(tables["mapping_table"][1:], 1):
        in_range(f"mapping {i} filename", m.get("filename_strindex", 0), "string_table")
        for a in m.get("attribute_indices", []):
            in_range(f"mapping {i} attribute", a, "attribute_table", False)
        if int(m.get("memory_limit", 0)) < int(m.get("memory_start", 0)):
            errors.append(f"mapping {i}: limit below start")
    for i, f in enumerate(tables["function_table"][1:], 1):
        for key in ("name_strindex", "system_name_strindex", "filename_strindex"):
            in_range(f"function {i} {key}", f.get(key, 0), "string_table")
    for i, loc in enumerate(tables["location_table"][1:], 1):
        in_range(f"location {i} mapping", loc.get("mapping_index", 0), "mapping_table")
        for line in loc.get("lines", []):
            in_range(f"location {i} line function", line.get("function_index", 0),
                     "function_table", False)
    for i, s in enumerate(tables["stack_table"][1:], 1):
        if not s.get("location_indices"):
            errors.append(f"stack {i} is empty but not index 0")
        for loc in s.get("location_indices", []):
            in_range(f"stack {i} location", loc, "location_table", False)
    for i, a in enumerate(tables["attribute_table"][1:], 1):
        in_range(f"attribute {i} key", a.get("key_strindex", 0), "string_table", False)
        if "value" not in a:
            errors.append(f"attribute {i} has no value")
    for i, a in enumerate(tables["attribute_table"][1:], 1):
        if string(a.get("key_strindex", 0)) == BUILD_ID and \
                not re.fullmatch(r"[0-9a-f]+", str(any_value(a.get("value")))):
            errors.append(f"attribute {i}: build id not hex: {a}")
    if len(set(strings)) != len(strings):
        errors.append("string_table holds a string twice")
    for r, rp in enumerate(request.get("resource_profiles", [])):
        attributes = rp.get("resource", {}).get("attributes", [])
        keys = [a["key"] for a in attributes]
        if len(set(keys)) != len(keys):
            errors.append(f"resource {r}: a key twice: {keys}")
        if not RESOURCE_REQUIRED <= set(keys):
            errors.append(f"resource {r}: missing {RESOURCE_REQUIRED - set(keys)}")
        for a in attributes:
            if not re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)*", a["key"]):
                errors.append(f"resource {r}: key {a['key']!r} is not a semantic convention's")
            if a["key"] == "process.pid" and not isinstance(any_value(a.get("value")), int):
                errors.append(f"resource {r}: process.pid not an int")
        for sp in rp.get("scope_profiles", []):
            if sp.get("scope", {}).get("name") != "kiln":
                errors.append(f"resource {r}: scope {sp.get('scope')}")
            for p in sp.get("profiles", []):
                st, pt = p.get("sample_type"), p.get("period_type")
                if not st or not string(st.get("type_strindex", 0)):
                    errors.append(f"resource {r}: a profile without its one sample type")
                if not pt or not string(pt.get("type_strindex", 0)):
                    errors.append(f"resource {r}: a profile without a period type")
                if int(p.get("time_unix_nano", 0)) <= 0 or int(p.get("duration_nano", 0)) <= 0:
                    errors.append(f"resource {r}: time or duration unset")
                if len(p.get("profile_id", "")) != 24:  # 16 bytes, base64
                    errors.append(f"resource {r}: profile_id not 16 bytes")
                for s in p.get("samples", []):
                    if len(s.get("values", [])) != 1:
                        errors.append(f"resource {r}: a sample without its one value")
                    in_range("sample stack", s.get("stack_index", 0), "stack_table")
                    for a in s.get("attribute_indices", []):
                        in_range("sample attribute", a, "attribute_table", False)
                        attribute = tables["attribute_table"][int(a)] \
                            if int(a) < len(tables["attribute_table"]) else {}
                        key = string(attribute.get("key_strindex", 0))
                        if key not in SAMPLE_ATTRIBUTES:
                            errors.append(f"sample attribute {key!r} not expected")
                        if key == "thread.id" and \
                                not isinstance(any_value(attribute.get("value")), int):
                            errors.append("thread.id not an int")
                        if key == "kiln.off_cpu.state" and \
                                any_value(attribute.get("value")) not in OFF_CPU_STATES:
                            errors.append(f"off-CPU state {attribute}")
    return errors


def otlp_stacks(request):
    """{(kind, window start s): Counter{(pid, tid, frames): value}} of one request;
    frames leaf first, "function file:line" per line, or the address unsymbolized."""
    d = request["dictionary"]
    strings, functions = d["string_table"], d["function_table"]
    locations, stacks, attributes = d["location_table"], d["stack_table"], d["attribute_table"]
    out = collections.defaultdict(collections.Counter)

    def frames(stack_index):
        names = []
        for index in stacks[stack_index].get("location_indices", []):
            loc = locations[index]
            if not loc.get("lines"):
                names.append("0x%x" % int(loc.get("address", 0)))
            for line in loc.get("lines", []):
                f = functions[line.get("function_index", 0)]
                # As go tool pprof -raw prints a line: "function file:line".
                names.append("%s %s:%d" % (strings[f.get("name_strindex", 0)],
                                           strings[f.get("filename_strindex", 0)],
                                           int(line.get("line", 0))))
        return tuple(names)

    for rp in request["resource_profiles"]:
        resource = {a["key"]: any_value(a["value"]) for a in rp["resource"]["attributes"]}
        for sp in rp["scope_profiles"]:
            for p in sp["profiles"]:
                kind = {"samples": "cpu", "off_cpu": "offcpu"}[
                    strings[p["sample_type"]["type_strindex"]]]
                start = int(p["time_unix_nano"]) // 1000000000
                for s in p.get("samples", []):
                    tid = None
                    for a in s.get("attribute_indices", []):
                        if strings[attributes[a]["key_strindex"]] == "thread.id":
                            tid = any_value(attributes[a]["value"])
                    key = (resource["process.pid"], tid, frames(s.get("stack_index", 0)))
                    out[(kind, start)][key] += int(s["values"][0])
    return out


def pprof_stacks(profile, kind):
    """The same of a local file, read by go tool pprof."""
    out = collections.Counter()
    value = 0 if kind == "cpu" else 1  # samples/count, or off_cpu/nanoseconds
    for s in profile.samples:
        names = []
        for index in s["locations"]:
            loc = profile.locations[index]
            if not loc["lines"]:
                names.append("0x%x" % loc["address"])
            names.extend(" ".join(line) for line in loc["lines"])
        key = (int(s["labels"]["pid"][0]), int(s["labels"]["tid"][0]), tuple(names))
        out[key] += s["values"][value]
    return out


def per_pid(stacks):
    totals = collections.Counter()
    for (pid, _, _), value in stacks.items():
        totals[pid] += value
    return totals


def check_requests(name, server, out, kinds, pids):
    """Every request valid; its windows those written locally; per process the
    same totals, and for the ground-truth programs (pids) the same stacks,
    functions, files, lines and values."""
    received = server.received()
    errors = [e for r in received for e in validate(r["request"])]
    check(f"{name}: {len(received)} requests pass the validator", received and not errors,
          errors[:8])
    local = local_windows(out)
    pushed = {}
    for r in received:
        for window, stacks in otlp_stacks(r["request"]).items():
            check(f"{name}: window {window} pushed once", window not in pushed, window)
            pushed[window] = stacks
    check(f"{name}: one request per local window, {kinds}",
          sorted(pushed) == sorted(local) and {k for k, _ in local} == set(kinds),
          f"local {sorted(local)}, pushed {sorted(pushed)}")
    mine = lambda stacks: {k: v for k, v in stacks.items() if k[0] in pids}  # noqa: E731
    totals = [w for w in local if w in pushed and
              per_pid(pushed[w]) == per_pid(pprof_stacks(local[w], w[0]))]
    check(f"{name}: every process's samples or time equal the pprof file's, window by "
          f"window ({len(totals)} of {len(local)})", len(totals) == len(local))
    same = [w for w in local if w in pushed and
            mine(pushed[w]) == mine(pprof_stacks(local[w], w[0])) and mine(pushed[w])]
    differ = [w for w in local if w not in same]
    detail = ""
    if differ and differ[0] in pushed:
        a, b = mine(pushed[differ[0]]), mine(pprof_stacks(local[differ[0]], differ[0][0]))
        detail = (f"only pushed: {list((collections.Counter(a) - collections.Counter(b)).items())[:2]}; "
                  f"only local: {list((collections.Counter(b) - collections.Counter(a)).items())[:2]}")
    check(f"{name}: the split's and the sleeper's stacks, functions, files, lines and values "
          f"equal the pprof file's ({len(same)} of {len(local)} windows)",
          len(same) == len(local), detail)
    processes = [len(r["request"]["resource_profiles"]) for r in received]
    return received, processes


def test_schema_field_numbers():
    """kiln's .proto files hold the release's messages with its field numbers, no more."""
    dump = subprocess.run([DEBIAN_PYTHON, SERVER, "--dump-fields"], stdout=subprocess.PIPE,
                          text=True, check=True).stdout
    fields = json.loads(dump)
    wrong = {m: (fields.get(m), want) for m, want in RELEASE_FIELDS.items()
             if fields.get(m) != want}
    check("schema: every message's field names and numbers are v1.11.0's", not wrong, wrong)
    check("schema: no message the release does not have",
          set(fields) == set(RELEASE_FIELDS), set(fields) ^ set(RELEASE_FIELDS))


def run_host(url, extra, iterations, out=None):
    """kiln on the whole host, CPU and off-CPU, 1 s windows, beside a 6:3:1
    split and a sleeper; returns (code, log, out, pids)."""
    out = out or tmpdir()
    workloads = [start([prog("split"), "60"]), start([prog("offcpu_threads"), "60"])]
    try:
        time.sleep(0.3)
        code, log = run_kiln(["--frequency", "99", "--duration", "1", "--iterations",
                              str(iterations), "--off-cpu", "--output-dir", out,
                              "--remote-store", url, "--remote-protocol", "otlp",
                              "--spool-dir", tmpdir(), "--remote-drain-timeout", "60"] + extra)
    finally:
        for w in workloads:
            stop(w)
    return code, log, out, [w.pid for w in workloads]


def test_http_every_window_after_outage():
    """OTLP/HTTP, the receiver down for the first windows: every window arrives
    once it is up, valid, and equal to the local files."""
    port = free_port()
    out = tmpdir()
    holder = {}
    # The receiver starts once kiln has spooled two windows it could not send.

    def start_later():
        wait_for(lambda: len([f for f in os.listdir(out) if f.endswith(".pb.gz")]) >= 2,
                 timeout=60)
        holder["server"] = OtlpServer("http", port=port)

    thread = threading.Thread(target=start_later)
    thread.start()
    try:
        code, log, out, pids = run_host(f"http://127.0.0.1:{port}",
                                        ["--header", "X-Scope-OrgID: team-o"], 4, out=out)
    finally:
        thread.join()
        if "server" in holder:
            holder["server"].stop()
    server = holder.get("server")
    check("otlp http: kiln exits 0, the receiver came up", code == 0 and server, log[-2000:])
    if not server:
        return
    check("otlp http: the outage was retried", upload_counters(log).get("retried", 0) > 0 or
          "retrying with backoff" in log, log[-1500:])
    received, processes = check_requests("otlp http", server, out, ["cpu", "offcpu"], pids)
    check("otlp http: one ResourceProfiles per process, many processes a window",
          processes and max(processes) > 2, processes)
    headers = [r["headers"] for r in received]
    check("otlp http: gzip, application/x-protobuf and --header sent",
          headers and all(h.get("content-encoding") == "gzip" and
                          h.get("content-type") == "application/x-protobuf" and
                          h.get("x-scope-orgid") == "team-o" for h in headers), headers[:1])
    mine = [rp for r in received for rp in r["request"]["resource_profiles"]
            if any(a["key"] == "process.pid" and any_value(a["value"]) == pids[0]
                   for a in rp["resource"]["attributes"])]
    resource = {a["key"]: any_value(a["value"]) for a in mine[0]["resource"]["attributes"]} \
        if mine else {}
    check("otlp http: the split's resource: its name, path, build id",
          resource.get("process.executable.name") == "split" and
          resource.get("process.executable.path") == prog("split") and
          re.fullmatch(r"[0-9a-f]{40}", str(resource.get(BUILD_ID))) and
          resource.get("service.name") == "split", resource)
    counters = upload_counters(log)
    check("otlp http: nothing failed or dropped", counters.get("failed") == 0 and
          counters.get("dropped") == 0, counters)


def test_grpc_tls_every_window_after_unavailable():
    """OTLP/gRPC over TLS: UNAVAILABLE twice, retried; every window arrives."""
    certs = make_certificates()
    server = OtlpServer("grpc", "--fail-first", "2", "--tls-cert", certs("server.pem"),
                        "--tls-key", certs("server.key"))
    try:
        code, log, out, pids = run_host(server.url, ["--otlp-transport", "grpc", "--tls-ca",
                                                     certs("ca.pem")], 3)
    finally:
        server.stop()
    check("otlp grpc: kiln exits 0", code == 0, log[-2000:])
    check("otlp grpc: UNAVAILABLE read from the trailers, retried",
          "gRPC UNAVAILABLE (14): unavailable (test fault)" in log and
          server.stats()["requests"] == server.stats()["accepted"] + 2, log[-1500:])
    received, _ = check_requests("otlp grpc", server, out, ["cpu", "offcpu"], pids)
    # grpcio keeps grpc-encoding to itself and hands over the message inflated: the
    # body's length (content-length, prefix included) against the message's tells.
    sizes = [(int(r["headers"].get("content-length", 0)), r["bytes"]) for r in received]
    check("otlp grpc: sent as gzip-compressed gRPC messages, smaller than they decode",
          sizes and all(0 < wire < decoded for wire, decoded in sizes), sizes[:3])


def test_rejected_and_partial_success():
    """A 400 with a google.rpc.Status: its message logged, not retried; a
    partial success: delivered, the rejected count logged and counted."""
    server = OtlpServer("http", "--reject")
    try:
        code, log, _, _ = run_host(server.url, [], 2)
    finally:
        server.stop()
    counters = upload_counters(log)
    check("otlp 400: every window failed once, none retried",
          code == 0 and counters.get("failed") == server.stats()["requests"] > 0 and
          counters.get("retried") == 0, (server.stats(), counters))
    check("otlp 400: the Status message is logged",
          "HTTP 400: invalid profile: the test server rejects everything" in log, log[-1500:])
    for transport, extra in (("http", []), ("grpc", ["--otlp-transport", "grpc"])):
        server = OtlpServer(transport, "--partial", "3")
        try:
            code, log, _, _ = run_host(server.url, extra, 2)
        finally:
            server.stop()
        counters = upload_counters(log)
        check(f"otlp {transport} partial success: delivered, not retried",
              code == 0 and counters.get("sent") == server.stats()["accepted"] > 0 and
              counters.get("retried") == 0, (server.stats(), counters))
        check(f"otlp {transport} partial success: logged with its message and counted",
              re.search(r"but dropped 3 of its profiles: test server: some profiles dropped",
                        log) and
              re.search(r"(\d+) dropped by the backend", log) and
              int(re.findall(r"(\d+) dropped by the backend", log)[-1]) ==
              3 * server.stats()["accepted"], log[-1500:])


def test_flags():
    """--otlp-transport needs --remote-protocol otlp; a bad word exits 2 naming it."""
    for args, reason in (
            (["--remote-store", "http://127.0.0.1:1", "--otlp-transport", "grpc"],
             "--otlp-transport: only with --remote-protocol otlp"),
            (["--remote-store", "http://127.0.0.1:1", "--remote-protocol", "otlp",
              "--otlp-transport", "quic"], "--otlp-transport"),
            (["--otlp-transport", "grpc"], "--otlp-transport: only with --remote-store")):
        proc = subprocess.run([KILN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=30)
        check(f"flags {' '.join(args)}: exit 2 with the reason",
              proc.returncode == 2 and reason in proc.stderr, (proc.returncode, proc.stderr))


def test_spool_of_another_protocol():
    """Profiles spooled for Pyroscope are not sent as OTLP: dropped, named, counted."""
    spool, out = tmpdir(), tmpdir()
    port = free_port()
    workload = start([prog("split"), "60"])
    try:
        time.sleep(0.3)
        run_kiln(["--pid", str(workload.pid), "--duration", "1", "--iterations", "1",
                  "--output-dir", out, "--remote-store", f"http://127.0.0.1:{port}",
                  "--spool-dir", spool, "--remote-drain-timeout", "1"])
        server = OtlpServer("http")
        try:
            code, log = run_kiln(["--pid", str(workload.pid), "--duration", "1",
                                  "--iterations", "1", "--output-dir", out,
                                  "--remote-store", server.url, "--remote-protocol", "otlp",
                                  "--spool-dir", spool])
        finally:
            server.stop()
    finally:
        stop(workload)
    check("spool of pyroscope's: dropped with a warning naming why",
          code == 0 and "which OTLP/HTTP does not take (--remote-protocol changed since)" in log,
          log[-1500:])
    check("spool of pyroscope's: the new window still delivered",
          server.stats()["accepted"] == 1, server.stats())


if __name__ == "__main__":
    require_root()
    test_schema_field_numbers()
    test_flags()
    test_http_every_window_after_outage()
    test_grpc_tls_every_window_after_unavailable()
    test_rejected_and_partial_success()
    test_spool_of_another_protocol()
    finish()
