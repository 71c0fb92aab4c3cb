#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# docs/api.openapi.yaml is a valid OpenAPI 3 document for a standard validator (swagger-cli,
# installed by scripts/install-deps.sh into .test-tools/), and not just valid YAML: issue 17
# found unquoted commas in flow mappings turning descriptions into stray schema keys.
# test_api.sh checks amtprovd's real answers against it.
TEST_NAME=api_openapi
. "$(dirname "$0")/lib.sh"

SPEC="$AMTPROV_SOURCE_DIR/docs/api.openapi.yaml"
VALIDATOR="$AMTPROV_SOURCE_DIR/.test-tools/openapi/node_modules/.bin/swagger-cli"
check "the OpenAPI validator is installed (scripts/install-deps.sh all)" test -x "$VALIDATOR"
expect_rc 0 "swagger-cli validates docs/api.openapi.yaml" \
  bash -c '"$0" validate "$1" >"$2" 2>&1 || { cat "$2" >&2; false; }' "$VALIDATOR" "$SPEC" "$T/out"
# The checker itself: a document with the old mistake is refused.
sed 's/description: "What is wrong, for a human."/description: What is wrong, for a human./' \
  "$SPEC" >"$T/broken.yaml"
check "the validator refuses an unquoted comma in a flow mapping" \
  bash -c '! "$0" validate "$1" >/dev/null 2>&1' "$VALIDATOR" "$T/broken.yaml"
# The answer checker test_api.sh uses: it accepts a right answer and refuses a wrong one.
echo '{"status": "ok"}' >"$T/ok.json"
echo '{"status": 1}' >"$T/bad.json"
check "openapi_check accepts a health answer" \
  python3 "$AMTPROV_SOURCE_DIR/tests/integration/openapi_check.py" "$SPEC" GET /v1/health 200 "$T/ok.json"
check "openapi_check refuses a wrong one" \
  bash -c '! python3 "$0" "$1" GET /v1/health 200 "$2" 2>/dev/null' \
  "$AMTPROV_SOURCE_DIR/tests/integration/openapi_check.py" "$SPEC" "$T/bad.json"
finish
