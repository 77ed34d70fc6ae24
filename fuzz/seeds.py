#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/seed-*).

Seeds are the valid events of the CloudEvents conformance vectors (found beside the project, at
../shared/conformance/cloudevents/, or at $QUORUM_CONFORMANCE_DIR), each written as the input its
target takes, and hostile events of Quorum's own: line breaks, NUL and tabs in attributes, attributes
over their limits, Quorum's reserved types. Run from anywhere; it rewrites only seed-* files, never
what the fuzzer added. Usage: python3 fuzz/seeds.py
"""

import hashlib
import json
import os
import pathlib
import sys

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
VECTORS = pathlib.Path(
    os.environ.get("QUORUM_CONFORMANCE_DIR", ROOT.parent / "shared" / "conformance" / "cloudevents")
)

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


def load(name):
    path = VECTORS / "format-json" / f"{name}.json"
    if not path.is_file():
        sys.exit(f"seeds: {path} not found (set QUORUM_CONFORMANCE_DIR)")
    with open(path) as f:
        return json.load(f)["tests"]


def header_value(value):
    """Percent-encodes as the HTTP binding does (quorum_domain::cloudevent::encode_http_header_value)."""
    out = []
    for b in value.encode():
        if 0x21 <= b <= 0x7E and b not in (ord('"'), ord("%")):
            out.append(chr(b))
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def request(headers, body):
    head = "".join(f"{n}: {v}\r\n" for n, v in headers)
    return head.encode() + b"\r\n" + body


def data_bytes(event):
    if "data_base64" in event:
        import base64

        return base64.b64decode(event["data_base64"])
    if "data" not in event or event["data"] is None:
        return b""
    data = event["data"]
    ct = event.get("datacontenttype") or "application/json"
    if isinstance(data, str) and not ct.split(";")[0].strip().endswith("json"):
        return data.encode()
    return json.dumps(data).encode()


def attributes(event):
    for name, value in event.items():
        if name in ("data", "data_base64", "datacontenttype") or value is None:
            continue
        yield name, value if isinstance(value, str) else json.dumps(value)


def binary_request(event, extra=()):
    headers = [(f"ce-{n}", header_value(v)) for n, v in attributes(event)]
    if event.get("datacontenttype"):
        headers.append(("content-type", event["datacontenttype"]))
    headers.extend(extra)
    return request(headers, data_bytes(event))


def nats_message(event):
    """A binary-mode NATS message as quorum_bus::encode writes it (values as they are)."""
    lines = [f"ce-{n}: {v}\r\n" for n, v in attributes(event)]
    if event.get("datacontenttype"):
        lines.append(f"content-type: {event['datacontenttype']}\r\n")
    return ("NATS/1.0\r\n" + "".join(lines) + "\r\n").encode() + data_bytes(event)


def base(**attrs):
    event = {"specversion": "1.0", "id": "h-1", "source": "/up", "type": "com.example.x"}
    event.update(attrs)
    return event


# Hostile events, each (name, event); binary and NATS seeds send them as they are (a line break in a
# header line would end it), so their names say what they carry.
HOSTILE = [
    ("lf-id", base(id="poison\n1")),
    ("crlf-type", base(type="a\r\nce-tenant: other")),
    ("nul-ext", base(ext="a\u0000b")),
    ("tab-subject", base(subject="a\tb")),
    ("del-source", base(source="/up\u007f")),
    ("nel-ext", base(ext="x\u0085y")),
    ("long-type", base(type="t" * 3000)),
    ("long-id", base(id="i" * 257)),
    ("long-ext", base(ext="v" * 2049)),
    ("many-ext", base(**{f"x{i}": "v" for i in range(33)})),
    ("long-ext-name", base(abcdefghijklmnopqrstu="v")),
    ("space-id", base(id=" padded ")),
    ("blank-type", base(type="   ")),
    ("nbsp-subject", base(subject="\u00a0s\u3000")),
    ("other-tenant", base(tenant="other")),
    ("replayof", base(replayof="x")),
    ("quorum-source", base(source="/quorum/ingest")),
    ("quorum-type", base(type="quorum.consensus.reached")),
    (
        "query",
        base(
            type="quorum.query.submitted",
            datacontenttype="application/json",
            data={"question": "why?", "experts": ["a", "b"], "quorum": 2},
        ),
    ),
    ("query-subject", base(type="quorum.query.submitted", subject="mine", data={"question": "q"})),
    ("dataschema", base(dataschema="urn:x:\u2028y")),
    ("data-and-base64", base(data="x", data_base64="eA==")),
    ("time-to-year-10000", base(time="9999-12-31T23:59:59-01:00")),
    ("time-to-year-minus-1", base(time="0000-01-01T00:00:00+01:00")),
    ("time-leap-second", base(time="2016-12-31T23:59:60Z")),
    ("time-nanos", base(time="2018-04-05T17:31:00.123456789+14:00")),
]
HOSTILE_BY_NAME = dict(HOSTILE)


def write(target, name, content):
    out = FUZZ / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(content).hexdigest()[:8]
    (out / f"seed-{name}-{digest}").write_bytes(content)


def main():
    for target in ("http_binary", "http_structured", "http_batch", "nats_decode", "nats_encode"):
        for old in (FUZZ / "corpus" / target).glob("seed-*"):
            old.unlink()
    valid = [(t["id"], t["event"]) for t in load("valid-events")]
    invalid = [(t["id"], t["event"]) for t in load("invalid-events")]
    for name, event in valid + invalid + HOSTILE:
        doc = json.dumps(event).encode()
        write("http_structured", name, request([("content-type", STRUCTURED)], doc))
        write("http_binary", name, binary_request(event))
        write("nats_decode", name, nats_message(event))
        write("nats_decode", f"{name}-structured", doc)
    for t in load("valid-batches") + load("invalid-batches"):
        write("http_batch", t["id"], request([("content-type", BATCH)], json.dumps(t["batch"]).encode()))
    hostile_batch = [event for _, event in HOSTILE[:6]] + [valid[0][1]]
    write("http_batch", "hostile", request([("content-type", BATCH)], json.dumps(hostile_batch).encode()))
    write(
        "http_batch",
        "query-and-plain",
        request([("content-type", BATCH)], json.dumps([dict(HOSTILE_BY_NAME["query"]), dict(valid)["validAllCoreAttributes"]]).encode()),
    )
    # HTTP headers that are not ce- attributes but reach the event.
    minimal = valid[0][1]
    trace = [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
    write("http_binary", "traceparent", binary_request(minimal, trace))
    write("http_binary", "traceparent-tab", binary_request(minimal, [("traceparent", "00\tx")]))
    write("http_binary", "traceparent-long", binary_request(minimal, [("traceparent", "t" * 3000)]))
    write("http_binary", "percent-lf-id", request([
        ("ce-specversion", "1.0"), ("ce-id", "poison%0A1"), ("ce-source", "/up"), ("ce-type", "x")], b""))
    write("http_binary", "percent-nul-ext", request([
        ("ce-specversion", "1.0"), ("ce-id", "1"), ("ce-source", "/up"), ("ce-type", "x"),
        ("ce-ext", "a%00b")], b"{}"))
    # `ce-data` is an extension named data in binary mode.
    write("http_binary", "ce-data", binary_request(minimal, [("ce-data", "ext")]))
    write("http_structured", "traceparent-tab", request(
        [("content-type", STRUCTURED), ("traceparent", "00\tx")], json.dumps(minimal).encode()))
    # NATS messages that only a raw publisher can send.
    write("nats_decode", "bare-cr", b"NATS/1.0\r\nce-specversion: 1.0\r\nce-id: a\rb\r\n\r\n")
    write("nats_decode", "status-line", b"NATS/1.0 503\r\nce-specversion: 1.0\r\n\r\n")
    write("nats_decode", "continuation", b"NATS/1.0\r\nce-specversion: 1.0\r\nce-id: a\r\n b\r\n"
          b"ce-source: /s\r\nce-type: t\r\n\r\n{}")
    write("nats_decode", "not-utf8", b"NATS/1.0\r\nce-id: \xff\r\n\r\n")
    write("nats_decode", "uppercase-ext", b"NATS/1.0\r\nce-specversion: 1.0\r\nce-id: 1\r\n"
          b"ce-source: /s\r\nce-type: t\r\nCE-Ext: v\r\nce-tenant: acme\r\n\r\n")
    # nats_encode takes `arbitrary`'s encoding, which no one writes by hand: a few byte strings
    # to start from; the corpus it grew on its own is kept beside them.
    for i, text in enumerate([b"", b"\x00" * 64, bytes(range(256)), b"1.0 /s t acme " * 8]):
        write("nats_encode", f"bytes{i}", text)


if __name__ == "__main__":
    main()
