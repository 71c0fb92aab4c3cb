#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# core/ is laid out in layers, one folder each, lowest first:
#   store -> (core/ itself: log, status, util) -> plugin -> site -> pki -> flow -> lifecycle -> api
# A file may include headers of its own folder and of the layers below it. core/'s own files
# (log, status, util) are used by every folder but the store, and use nothing above the
# store. Including a header of a layer above is a layering error: it is how cycles grow.
#   check_layers.sh [CORE_DIR]
set -euo pipefail
core=${1:-$(dirname "$0")/../core}
layers=(store plugin site pki flow lifecycle api)

rank_of_dir() { # folder name -> rank (store 0, core/ itself 1, plugin 2, ...)
	local i
	[ "$1" = . ] && { echo 1; return; }
	[ "$1" = store ] && { echo 0; return; }
	for i in "${!layers[@]}"; do
		[ "${layers[$i]}" = "$1" ] && { echo $((i + 1)); return; }
	done
	echo "unknown"
}

cd "$core"
declare -A home # header name -> folder
while IFS= read -r h; do
	name=${h##*/}
	dir=$(dirname "$h"); dir=${dir#./}
	[ -n "${home[$name]:-}" ] && { echo "header $name exists twice: ${home[$name]} and $dir"; exit 1; }
	home[$name]=$dir
done < <(find . -name '*.h' | sort)

bad=0 checked=0
while IFS= read -r f; do
	dir=$(dirname "$f"); dir=${dir#./}
	r=$(rank_of_dir "$dir")
	if [ "$r" = unknown ]; then
		echo "$f: folder '$dir' is not one of the layers (${layers[*]}) nor core/ itself"
		bad=1; continue
	fi
	while IFS= read -r inc; do
		hdir=${home[$inc]:-}
		[ -z "$hdir" ] && continue # a system or public header (include/amtprov/)
		hr=$(rank_of_dir "$hdir")
		if [ "$hr" -gt "$r" ]; then
			echo "core/${f#./} includes $inc from core/$hdir/, a layer above core/${dir}/"
			bad=1
		fi
		checked=$((checked + 1))
	done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f" | sed 's|.*/||')
done < <(find . -name '*.[ch]' | sort)

[ "$bad" = 0 ] || exit 1
echo "core/: $checked includes checked; no file includes a header of a layer above its own"
