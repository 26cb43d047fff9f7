"""Schemathesis hooks for the control plane's OpenAPI document: a log upload's
body is NDJSON (application/x-ndjson), sent as the bytes generated for it."""

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")
