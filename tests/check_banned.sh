#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fails when product or test C code uses a function we ban (STYLE 25): unbounded copies and
# formats, strtok's hidden state, atoi's silent failure. Use snprintf, util_strlcpy,
# strtok_r and strtol/util_parse_ll instead.
set -uo pipefail
cd "${AMTPROV_SOURCE_DIR:-$(dirname "$0")/..}"
hits=$(grep -nE '(^|[^_a-zA-Z0-9])(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|strncpy|gets)[[:space:]]*\(' \
  --include='*.c' --include='*.h' -r core include tools plugins tests examples sim adcssim bench agent 2>/dev/null |
  grep -vE '^\S+:[0-9]+:\s*(/?\*|//)')
if [ -n "$hits" ]; then
  echo "banned functions used:"
  echo "$hits"
  echo "banned: 0 passed, 1 failed"
  exit 1
fi
echo "banned: 1 passed, 0 failed"
