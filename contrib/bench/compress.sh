#!/usr/bin/env bash
# What --compress-level costs: MB (10^6 bytes) of text and of random data
# sent over loopback through `ipprotd -L -M -f DIR/prot -z|-j --compress-level N`
# to a socat sink, next to `gzip -N` / `bzip2 -N` alone on the same bytes.
# Prints one markdown table: Gbit/s of input (10^9 bit/s; x 125 = MB/s) and
# output size as % of input. ipprotd's log differs in size from the tool's
# output: -M markers, and -z is a different deflate implementation (zlib-rs).
#
# Knobs: IPPROTD (binary, default target/release/ipprotd), MB [200],
# LEVELS ["1 6"], TOOLS ["gzip bzip2"], DATA ["text random"].
# Every step is bounded by `timeout`; every process started is ended by PID.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
IPPROTD=${IPPROTD:-$HERE/../../target/release/ipprotd}
MB=${MB:-200}
LEVELS=${LEVELS:-"1 6"}
TOOLS=${TOOLS:-"gzip bzip2"}
DATA=${DATA:-"text random"}
WORK=$(mktemp -d /tmp/ipprotd-compress.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for t in socat gzip bzip2 python3 timeout; do
    command -v "$t" >/dev/null || { echo "compress.sh: $t is missing" >&2; exit 1; }
done
[[ -x $IPPROTD ]] || { echo "compress.sh: no ipprotd binary at $IPPROTD (cargo build --release)" >&2; exit 1; }

now_ns() { date +%s%N; }
calc() { python3 -c "print('%.2f' % ($1))"; }
calc3() { python3 -c "print('%.3f' % ($1))"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bytes=$((MB * 1000000))
head -c "$bytes" /dev/urandom >"$WORK/random"
for ((i = 0; i < 40; i++)); do
    find /usr/share/man -type f -print0 2>/dev/null | sort -z | xargs -0 -r zcat -f 2>/dev/null
done | head -c "$bytes" >"$WORK/text"
if (($(stat -c %s "$WORK/text") < bytes)); then
    python3 "$HERE/benchnet.py" gen-text "$WORK/text" "$bytes" || exit 1
    TEXT_SOURCE="pseudo English from benchnet.py gen-text"
else
    TEXT_SOURCE="man pages from /usr/share/man, decompressed and concatenated"
fi

# through DATA FLAG LEVEL: prints "Gbit/s size%" of one ipprotd recording run
through() {
    local data=$1 flag=$2 level=$3 sp sink px lp t0 t1 i sz
    sp=$(free_port)
    timeout 300 socat -u -b 131072 "TCP-LISTEN:$sp,bind=127.0.0.1,reuseaddr" OPEN:/dev/null,wronly &
    sink=$!
    PIDS+=("$sink")
    rm -rf "$WORK/log"; mkdir "$WORK/log"
    "$IPPROTD" -p 0@127.0.0.1 -P "$sp@127.0.0.1" --verbose -L -M -f "$WORK/log/prot" \
        "$flag" --compress-level "$level" 2>"$WORK/ipprotd.err" &
    px=$!
    PIDS+=("$px")
    for ((i = 0; i < 500; i++)); do
        lp=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$WORK/ipprotd.err" | head -1)
        [[ -n $lp ]] && break
        sleep 0.02
    done
    [[ -n $lp ]] || { echo "fail (no listening line)"; kill "$px" "$sink"; return; }
    t0=$(now_ns)
    timeout 300 socat -u -b 131072 "OPEN:$WORK/$data,rdonly" "TCP:127.0.0.1:$lp"
    wait "$sink"
    # the clock stops when the connection's child has closed its data log
    for ((i = 0; i < 15000; i++)); do
        [[ -z $(ps -o pid= --ppid "$px") ]] && break
        sleep 0.02
    done
    t1=$(now_ns)
    kill "$px"; wait "$px" 2>/dev/null
    sz=$(du -sb "$WORK/log" | cut -f1)
    echo "$(calc3 "$bytes * 8 / ($t1 - $t0)") $(calc "100.0 * $sz / $bytes")"
}

# alone DATA TOOL LEVEL: the compressor alone, "Gbit/s size%"
alone() {
    local data=$1 tool=$2 level=$3 t0 t1 sz
    t0=$(now_ns)
    sz=$(timeout 600 "$tool" "-$level" <"$WORK/$data" | wc -c)
    t1=$(now_ns)
    echo "$(calc3 "$bytes * 8 / ($t1 - $t0)") $(calc "100.0 * $sz / $bytes")"
}

echo "$MB MB per data set; text: $TEXT_SOURCE; random: /dev/urandom; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| data | compressor | level | ipprotd Gbit/s | ipprotd log % of input | alone Gbit/s | alone % of input | ipprotd / alone |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for data in $DATA; do
    for tool in $TOOLS; do
        flag=-z; [[ $tool == bzip2 ]] && flag=-j
        for level in $LEVELS; do
            read -r pg pr <<<"$(through "$data" "$flag" "$level")"
            read -r ag ar <<<"$(alone "$data" "$tool" "$level")"
            echo "| $data | $tool ($flag) | $level | $pg | $pr | $ag | $ar | $(calc "$pg / $ag") |"
        done
    done
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
