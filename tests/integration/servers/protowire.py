# SPDX-License-Identifier: Apache-2.0
"""A tiny protobuf wire-format reader for the test servers, written from the
encoding spec (varints, length-delimited fields), so the servers depend on no
protobuf library: enough to read Parca's WriteRawRequest and check a pprof
Profile the way Pyroscope's and Parca's validators do."""
import gzip


def varint(buf, pos):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(buf):
    """Yields (field number, wire type, value): int for varints and fixed
    fields, bytes for length-delimited ones."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            length, pos = varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated field")
            value, pos = bytes(buf[pos:pos + length]), pos + length
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated field")
        yield number, wire, value


def packed_or_single(wire, value):
    """Repeated integers: packed (wire 2) or one per field (wire 0)."""
    if wire == 0:
        return [value]
    out, pos = [], 0
    while pos < len(value):
        v, pos = varint(value, pos)
        out.append(v)
    return out


def maybe_gunzip(data):
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def read_profile(data):
    """The parts of a pprof Profile the validators look at."""
    profile = {"strings": [], "sample_types": [], "samples": [], "locations": [],
               "functions": [], "mappings": [], "time_nanos": 0, "duration_nanos": 0}
    for number, wire, value in fields(maybe_gunzip(data)):
        if number == 1:  # sample_type
            vt = {n: v for n, _, v in fields(value)}
            profile["sample_types"].append((vt.get(1, 0), vt.get(2, 0)))
        elif number == 2:  # sample
            sample = {"locations": [], "values": [], "labels": []}
            for n, w, v in fields(value):
                if n == 1:
                    sample["locations"] += packed_or_single(w, v)
                elif n == 2:
                    sample["values"] += packed_or_single(w, v)
                elif n == 3:
                    sample["labels"].append({ln: lv for ln, _, lv in fields(v)})
            profile["samples"].append(sample)
        elif number in (3, 4, 5):  # mapping, location, function: their ids
            ids = [v for n, _, v in fields(value) if n == 1]
            key = {3: "mappings", 4: "locations", 5: "functions"}[number]
            profile[key].append(ids[0] if ids else 0)
        elif number == 6:
            profile["strings"].append(value)
        elif number == 9:
            profile["time_nanos"] = value
        elif number == 10:
            profile["duration_nanos"] = value
    return profile


def validate_profile(profile):
    """Pyroscope's ValidateProfile and Parca's ValidatePprofProfile checks
    that a pusher can get wrong; returns an error message or None."""
    strings = profile["strings"]
    if not strings or strings[0] != b"":
        return "string 0 should be empty string"
    if not profile["sample_types"]:
        return "empty profile"
    for type_index, unit_index in profile["sample_types"]:
        if type_index >= len(strings) or unit_index >= len(strings):
            return "sample type string index out of range"
        if b"-" in strings[type_index]:
            return "sample type contains -"
    for s in strings:
        try:
            s.decode("utf-8")
        except UnicodeDecodeError:
            return "invalid utf8 string hex: " + s.hex()
    for sample in profile["samples"]:
        if len(sample["values"]) != len(profile["sample_types"]):
            return "sample value length mismatch"
        for label in sample["labels"]:
            if label.get(1, 0) >= len(strings) or label.get(2, 0) >= len(strings):
                return "sample label string index out of range"
    for key in ("mappings", "locations", "functions"):
        if profile[key] != list(range(1, len(profile[key]) + 1)):
            return f"{key[:-1]} id is not sequential"
    return None
