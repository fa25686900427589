#!/usr/bin/env python3
"""A stand-in OTLP/HTTP receiver that saves what it is sent, and prints saved bodies.

For looking at the spans real instrumentations send.

    python otlp_capture.py --port 4318 --out DIR       save each POST body as DIR/NNN-traces.pb (or -metrics, -logs)
    python otlp_capture.py --dump DIR/001-traces.pb    print the spans of a saved body

Point an app at it with `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` and
`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318`. It answers every export with an
empty success response. `--dump` needs `opentelemetry-proto` (installed in the test venv).
Used to make `tests/fixtures/django_books_otlp.pb`.
"""

import argparse
import gzip
import itertools
import pathlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_SIGNALS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}


def serve(port, out):
    out.mkdir(parents=True, exist_ok=True)
    counter = itertools.count(1)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self._body()
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            signal = _SIGNALS.get(self.path)
            if signal is not None:
                path = out / f"{next(counter):03}-{signal}.pb"
                path.write_bytes(body)
                print(f"saved {path} ({len(body)} bytes)", flush=True)
            self.send_response(200 if signal else 404)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _body(self):
            # The Node.js exporter sends its body chunked, without a Content-Length.
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers, up to the blank line
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk

        def log_message(self, *args):
            pass

    # 127.0.0.1 only: this is a local test tool.
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def _value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def dump(path):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest.FromString(pathlib.Path(path).read_bytes())
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        print(f"resource {resource}")
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            print(f"  scope {scope.name} {scope.version} {scope_spans.schema_url}")
            for span in scope_spans.spans:
                attributes = {a.key: _value(a.value) for a in span.attributes}
                duration_ms = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
                print(
                    f"    {span.name!r} kind={span.kind} trace={span.trace_id.hex()}"
                    f" span={span.span_id.hex()} parent={span.parent_span_id.hex() or '-'}"
                    f" status={span.status.code} {duration_ms:.3f}ms"
                )
                print(f"      {attributes}")
                for event in span.events:
                    print(f"      event {event.name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4318)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("otlp-capture"))
    parser.add_argument("--dump", metavar="FILE", help="print the spans of a saved traces body")
    args = parser.parse_args()
    if args.dump:
        dump(args.dump)
    else:
        serve(args.port, args.out)


if __name__ == "__main__":
    main()
