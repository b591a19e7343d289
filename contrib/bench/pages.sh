#!/usr/bin/env bash
# Where an idle connection's memory goes, page by page: starts a Python echo
# backend and `ipprotd -p P@127.0.0.1 -P T@127.0.0.1 [ARGS...]`, opens N
# connections that each echo one byte and stay idle (as run.sh's memory
# test does), then prints
#   - ΔPSS per connection: Pss summed over ipprotd's process tree
#     (/proc/PID/smaps_rollup) with the N connections, minus before, over N;
#   - for one child: every writable private mapping with the pages that are
#     present and mapped by this process alone (/proc/PID/pagemap bit 56,
#     "exclusively mapped"), i.e. the pages the child (or the parent, by
#     writing after the fork) made its own copy of, and the child's minor
#     faults so far;
#   - page faults per connection, whole connections (accept to exit): the
#     parent's minflt + cminflt (its reaped children's) after the N
#     connections were released and reaped, minus before, over N.
#
# Usage: contrib/bench/pages.sh [ARGS...]     e.g. pages.sh -f /tmp/rec/prot -L -M
# Knobs: IPPROTD (binary, default target/release/ipprotd), N [200].
# Loopback only; every process started is ended by PID; steps bounded by timeout.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
IPPROTD=${IPPROTD:-$HERE/../../target/release/ipprotd}
N=${N:-200}
HELPER=$HERE/benchnet.py
WORK=$(mktemp -d /tmp/ipprotd-pages.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for t in python3 timeout ss; do
    command -v "$t" >/dev/null || { echo "pages.sh: $t is missing" >&2; exit 1; }
done
[[ -x $IPPROTD ]] || { echo "pages.sh: no ipprotd binary at $IPPROTD (set IPPROTD)" >&2; exit 1; }

listening() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 12000))
        listening "$p" || { echo "$p"; return 0; }
    done
    return 1
}
wait_listen() {
    local i
    for ((i = 0; i < 100; i++)); do listening "$1" && return 0; sleep 0.05; done
    return 1
}
# "pid ppid" of every process, the children of $1
kids() { ps -e -o pid=,ppid= | awk -v p="$1" '$2 == p {print $1}'; }
pss_sum() {
    local p s=0 v
    for p in "$1" $(kids "$1"); do
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
        s=$((s + ${v:-0}))
    done
    echo "$s"
}

ep=$(free_port) || { echo "pages.sh: no free port" >&2; exit 1; }
timeout 300 python3 "$HELPER" echo-server "$ep" --lifetime 240 >"$WORK/echo.log" 2>&1 &
PIDS+=($!)
wait_listen "$ep" || { echo "pages.sh: echo backend did not start" >&2; exit 1; }
lp=$(free_port) || { echo "pages.sh: no free port" >&2; exit 1; }
"$IPPROTD" -p "$lp@127.0.0.1" -P "$ep@127.0.0.1" "$@" >"$WORK/ipprotd.log" 2>&1 &
P=$!
PIDS+=("$P")
wait_listen "$lp" || { echo "pages.sh: ipprotd did not listen: $(head -c 300 "$WORK/ipprotd.log")" >&2; exit 1; }

# warm up as run.sh does, then the baseline once those children are gone
timeout 30 python3 "$HELPER" hold "$lp" --n 4 >/dev/null 2>&1
for ((i = 0; i < 40; i++)); do [[ -z $(kids "$P") ]] && break; sleep 0.05; done
sleep 0.3
base=$(pss_sum "$P")
faults() { awk '{sub(/.*\) /, ""); print $8 + $9}' "/proc/$1/stat"; }
f0=$(faults "$P")
timeout 120 python3 "$HELPER" hold "$lp" --n "$N" --release "$WORK/release" --max-hold 90 >"$WORK/hold.out" 2>&1 &
hp=$!
PIDS+=("$hp")
for ((i = 0; i < 1200; i++)); do
    grep -q '^READY\|^FAIL' "$WORK/hold.out" 2>/dev/null && break
    sleep 0.05
done
grep -q '^READY' "$WORK/hold.out" || { echo "pages.sh: $(cat "$WORK/hold.out")" >&2; exit 1; }
sleep 1
after=$(pss_sum "$P")
child=$(kids "$P" | head -1)
awk -v a="$after" -v b="$base" -v n="$N" \
    'BEGIN {printf "ΔPSS per idle connection: %.1f KiB (tree %d KiB -> %d KiB, %d connections)\n", (a - b) / n, b, a, n}'
python3 - "$child" <<'EOF'
import struct, sys
pid = sys.argv[1]
total = 0
with open(f"/proc/{pid}/pagemap", "rb") as pm, open(f"/proc/{pid}/maps") as maps:
    for line in maps:
        f = line.split()
        if "w" not in f[1] or "s" in f[1]:
            continue
        a, b = (int(x, 16) for x in f[0].split("-"))
        pm.seek((a >> 12) * 8)
        raw = pm.read(((b - a) >> 12) * 8)
        own = [i for i in range((b - a) >> 12)
               if (lambda v: v >> 63 & 1 and v >> 56 & 1)(struct.unpack_from("<Q", raw, i * 8)[0])]
        if own:
            total += len(own)
            name = f[5].rsplit("/", 1)[-1] if len(f) > 5 else "(anonymous)"
            kib = (b - a) >> 10
            print(f"{len(own):3d}  {name:30s} {kib:6d} KiB mapping, own pages at +{', +'.join(hex(i) for i in own)}")
print(f"{total:3d}  pages of the child's own ({total * 4} KiB)")
with open(f"/proc/{pid}/stat") as s:
    print(f"child minor faults so far: {s.read().rsplit(')', 1)[1].split()[7]}")
EOF
touch "$WORK/release"
for ((i = 0; i < 200; i++)); do [[ -z $(kids "$P") ]] && break; sleep 0.05; done
[[ -z $(kids "$P") ]] || { echo "pages.sh: children still running" >&2; exit 1; }
awk -v a="$(faults "$P")" -v b="$f0" -v n="$N" \
    'BEGIN {printf "page faults per connection (parent + child, accept to exit): %.1f\n", (a - b) / n}'
