#!/usr/bin/env bash
# A/B of `ipprotcat --statements` builds on kept recordings: for each
# recording in DIR and each form (text, --json), every binary reads the
# file three times over (FILE FILE FILE) in turns, N rounds; the fastest
# round's task-clock (perf stat) counts, printed as MB/s of input per
# binary. Turns and the fastest of N: on a shared VM the speed moves by
# a quarter from one minute to the next, for every binary alike.
#
# Usage: reader.sh DIR N BIN...
#   DIR  recordings, e.g. those `KEEP=DIR contrib/bench/audit.sh reader` keeps
#   N    rounds (e.g. 9)
# Needs perf (apt-get install linux-perf). Reads only; writes nothing.
set -uo pipefail
[[ $# -ge 3 ]] || { echo "usage: $0 DIR N BIN..." >&2; exit 2; }
DIR=$1 N=$2; shift 2
command -v perf >/dev/null || { echo "perf not installed (apt-get install linux-perf)" >&2; exit 1; }
for f in "$DIR"/*; do
    [[ -f $f ]] || continue
    size=$(stat -c %s "$f")
    for form in text json; do
        args=(--statements); [[ $form == json ]] && args+=(--json)
        declare -A best=()
        for _ in $(seq "$N"); do
            for b in "$@"; do
                t=$(perf stat -x, -e task-clock "$b" "${args[@]}" "$f" "$f" "$f" 2>&1 >/dev/null | cut -d, -f1)
                [[ $t =~ ^[0-9.]+$ ]] || { echo "$b failed on $f: $t" >&2; exit 1; }
                if [[ -z ${best[$b]:-} ]] || awk "BEGIN{exit !($t < ${best[$b]})}"; then best[$b]=$t; fi
            done
        done
        line="$(basename "$f") $form"
        for b in "$@"; do
            line+=" $(awk -v s="$size" -v t="${best[$b]}" 'BEGIN{printf "%.1f", 3*s/1e6/(t/1000)}')"
        done
        echo "$line MB/s"
        unset best
    done
done
