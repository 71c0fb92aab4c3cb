#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libamtprov exports exactly its export list (core/libamtprov.map): what the tools call,
# nothing of the core's internals.
#   check_exports.sh LIBAMTPROV MAP
set -euo pipefail
lib=$1 map=$2
want=$(sed -n '/^global:/,/^local:/p' "$map" | grep -E '^\s+[A-Za-z_][A-Za-z0-9_]*;' |
	tr -d ' \t;' | sort)
have=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | grep -v '^AMTPROV_0$' | sort)
if [ "$want" != "$have" ]; then
	echo "libamtprov's exports differ from $map (< list only, > library only):"
	diff <(echo "$want") <(echo "$have") | grep '^[<>]'
	exit 1
fi
echo "libamtprov exports the $(wc -l <<<"$have") symbols of its export list, nothing else"
