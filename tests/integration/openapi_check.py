#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks one real API answer against docs/api.openapi.yaml.

Usage: openapi_check.py SPEC METHOD TEMPLATE_PATH STATUS BODY_FILE
TEMPLATE_PATH is the path as the document spells it (/v1/devices/{device}). The answer's
JSON must match the response schema of that status (or of "default"); $refs resolve inside
the document. Exit 0 when it matches, 1 with the reasons otherwise.
"""
import json
import sys
import warnings

import jsonschema
import yaml


def nullable(node):
    """OpenAPI 3.0's `nullable: true` is not JSON Schema: spell it as a "null" type."""
    if isinstance(node, dict):
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        for v in node.values():
            nullable(v)
    elif isinstance(node, list):
        for v in node:
            nullable(v)
    return node


def main():
    spec_file, method, path, status, body_file = sys.argv[1:6]
    spec = nullable(yaml.safe_load(open(spec_file)))
    op = spec["paths"][path][method.lower()]
    responses = op["responses"]
    resp = responses.get(status) or responses.get(int(status)) or responses.get("default")
    if resp is None:
        print(f"{method} {path}: status {status} is not documented", file=sys.stderr)
        return 1
    if "$ref" in resp:
        resp = spec["components"]["responses"][resp["$ref"].split("/")[-1]]
    schema = resp.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        print(f"{method} {path} {status}: no JSON schema documented", file=sys.stderr)
        return 1
    body = json.load(open(body_file))
    # RefResolver: what Debian 12's jsonschema (4.10) offers; newer ones warn.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # The schema is checked where it sits in the document, so its $refs resolve there.
    resolver = jsonschema.RefResolver(base_uri="", referrer=spec)
    errors = list(jsonschema.Draft4Validator(schema, resolver=resolver).iter_errors(body))
    for e in errors:
        print(f"{method} {path} {status}: {'/'.join(map(str, e.path))}: {e.message}",
              file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
