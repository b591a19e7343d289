#!/usr/bin/env bash
# ipprotd soak and fault run, loopback only, bounded in time; prints figures.
#
#   contrib/soak/run.sh                 # everything, 100,000 connections
#   SOAK_N=10000 contrib/soak/run.sh    # a shorter main run
#   SOAK_ONLY="crash idle" contrib/soak/run.sh
#
# Scenarios (SOAK_ONLY picks some): main crash diskfull limits idle term.
# Needs python3 (stdlib), gzip, prlimit (util-linux); the disk-full and the
# RLIMIT_NPROC parts need root (a tmpfs, --user nobody) and are skipped
# otherwise. IPPROTD= picks the binary (default: target/release/ipprotd,
# built if missing). Exit status 0 when every check passed.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N=${SOAK_N:-100000}
CONC=${SOAK_CONC:-32}
BIG_EVERY=${SOAK_BIG_EVERY:-200}
LIMIT=${SOAK_LIMIT:-3600}
ONLY=${SOAK_ONLY:-main crash diskfull limits idle term}
BIN=${IPPROTD:-$ROOT/target/release/ipprotd}
WORK=$(mktemp -d /tmp/ipprotd-soak.XXXXXX)
chmod 755 "$WORK" # the --user nobody part works in it
LOAD=(python3 "$HERE/soakload.py")
FAILS=0
PIDS=()
MOUNTED=

say() { printf '%s\n' "$*"; }
check() { # check NAME CONDITION-TEXT RESULT(0/1)
    if [ "$3" = 0 ]; then say "  PASS $1: $2"; else say "  FAIL $1: $2"; FAILS=$((FAILS + 1)); fi
}
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    [ -n "$MOUNTED" ] && umount "$MOUNTED" 2>/dev/null
    [ -n "${SOAK_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'say "soak: time limit of ${LIMIT}s reached"; exit 3' TERM
( sleep "$LIMIT"; kill -TERM $$ 2>/dev/null ) &
PIDS+=($!)

if [ ! -x "$BIN" ]; then
    (cd "$ROOT" && cargo build --release --bin ipprotd) || exit 1
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
kids() { cat "/proc/$1/task/$1/children" 2>/dev/null; }
nkids() { kids "$1" | wc -w; }
zombies() {
    local z=0 c
    for c in $(kids "$1"); do
        [ "$(awk '{print $3}' "/proc/$c/stat" 2>/dev/null)" = Z ] && z=$((z + 1))
    done
    echo $z
}
# wait_until SECONDS COMMAND...: poll every 50 ms
wait_until() {
    local end=$((SECONDS + $1)); shift
    until "$@"; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.05
    done
}
lines_ge() { [ "$( { wc -l < "$1"; } 2>/dev/null || echo 0)" -ge "$2" ]; }
has_line() { grep -q "$2" "$1" 2>/dev/null; }
kids_eq() { [ "$(nkids "$1")" -eq "$2" ]; }
count() { grep -c -- "$2" "$1" 2>/dev/null || true; }
statuses() { python3 -c 'import json,sys,collections; print(dict(collections.Counter(json.loads(l)["status"] for l in open(sys.argv[1]))))' "$1"; }

# listening PORT: a socket listens on 127.0.0.1:PORT (no test connection,
# which would be one more entry)
listening() { grep -qi "0100007F:$(printf '%04X' "$1") 00000000:0000 0A" /proc/net/tcp; }
# start_daemon DIR ARGS...: foreground ipprotd on a free port; sets DPID DPORT
# (PRELUDE=shell commands run before it, e.g. a ulimit)
start_daemon() {
    local dir=$1; shift
    DPORT=$(free_port)
    bash -c "${PRELUDE:-} exec \"\$0\" \"\$@\"" "$BIN" -p "$DPORT@127.0.0.1" -P "$BPORT@127.0.0.1" "$@" 2> "$dir/stderr" &
    DPID=$!
    PIDS+=("$DPID")
    wait_until 10 listening "$DPORT" ||
        { say "soak: ipprotd did not start: $(cat "$dir/stderr")"; exit 1; }
}
stop_daemon() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

say "ipprotd soak: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores, binary $BIN"
say "work dir $WORK"
"${LOAD[@]}" backend "$WORK/backend.port" --lifetime "$LIMIT" &
PIDS+=($!)
wait_until 10 test -s "$WORK/backend.port" || { say "soak: backend did not start"; exit 1; }
BPORT=$(cat "$WORK/backend.port")

# 1. N connections, short and 4 MiB, recorded -L -M -z, a hook, -C json
if [[ " $ONLY " == *" main "* ]]; then
    d=$WORK/main; mkdir -p "$d/rec"
    printf '#!/bin/sh\necho "$1" >> %s/hook.runs\n' "$d" > "$d/hook.sh"; chmod +x "$d/hook.sh"
    start_daemon "$d" -f "$d/rec/prot" -L -M -z -u "$d/hook.sh" -c "$d/conn.log" -C json
    say "main: $N connections (every ${BIG_EVERY}th 4 MiB), $CONC at a time"
    warm=$((N < 1000 ? N / 10 : 1000))
    "${LOAD[@]}" run "$DPORT" --n "$warm" --conc "$CONC" --big-every "$BIG_EVERY" > "$d/warm.out"
    wait_until 60 kids_eq "$DPID" 0
    fd0=$(fds "$DPID"); rss0=$(rss_kb "$DPID"); cpu0=$(cpu_ticks "$DPID")
    "${LOAD[@]}" run "$DPORT" --n $((N - warm)) --conc "$CONC" --big-every "$BIG_EVERY" > "$d/run.out"
    wait_until 120 kids_eq "$DPID" 0
    wait_until 60 lines_ge "$d/hook.runs" "$N"
    fd1=$(fds "$DPID"); rss1=$(rss_kb "$DPID"); cpu1=$(cpu_ticks "$DPID"); z=$(zombies "$DPID")
    say "  client: warm-up $(cat "$d/warm.out"); main $(cat "$d/run.out")"
    entries=$(wc -l < "$d/conn.log"); runs=$(wc -l < "$d/hook.runs")
    nfiles=$(find "$d/rec" -name 'prot_*' | wc -l)
    find "$d/rec" -name 'prot_*' -print0 | xargs -0 -n 2000 gzip -t 2> "$d/gzip.err"; gz=$?
    bad=$(awk '{s += $6 + $8} END {print s + 0}' "$d/warm.out" "$d/run.out")
    check main "relay byte-exact for every connection (client-side bad/refused: $bad)" $([ "$bad" = 0 ]; echo $?)
    check main "entries $entries of $N, statuses $(statuses "$d/conn.log")" $([ "$entries" = "$N" ]; echo $?)
    check main "hook runs $runs of $N" $([ "$runs" = "$N" ]; echo $?)
    check main "recordings $nfiles, gzip -t of all: exit $gz" $([ "$nfiles" = "$N" ] && [ $gz = 0 ]; echo $?)
    check main "zombies at the end: $z, children left: $(nkids "$DPID")" $([ "$z" = 0 ]; echo $?)
    check main "parent fds $fd0 -> $fd1, RSS ${rss0} -> ${rss1} KiB, parent CPU $(((cpu1 - cpu0) * 10)) ms" \
        $([ "$fd0" = "$fd1" ] && [ "$rss1" -le $((rss0 + 64)) ]; echo $?)
    stop_daemon "$DPID"
    rm -rf "$d/rec"
fi

# 2. 200 children SIGKILLed mid-transfer
if [[ " $ONLY " == *" crash "* ]]; then
    d=$WORK/crash; mkdir -p "$d/rec"
    start_daemon "$d" -f "$d/rec/prot" -L -M -z -c "$d/conn.log" -C json
    "${LOAD[@]}" hold "$DPORT" --n 200 --send 65536 --release "$d/release" > "$d/hold.out" &
    hp=$!; PIDS+=("$hp")
    wait_until 60 has_line "$d/hold.out" READY
    wait_until 60 kids_eq "$DPID" 200
    # the idle flush (1 s after the data) puts the client bytes on disk
    flushed() { [ "$("${LOAD[@]}" gzcheck "$d"/rec/prot_* | awk '$2 != "error" && $2 >= 65536' | wc -l)" = 200 ]; }
    wait_until 60 flushed
    killed=0
    for c in $(kids "$DPID"); do kill -KILL "$c" && killed=$((killed + 1)); done
    wait_until 60 lines_ge "$d/conn.log" 200
    touch "$d/release"; wait "$hp"
    crashed=$(count "$d/conn.log" '"status":"crashed"')
    withdest=$(count "$d/conn.log" "\"dest_port\":$BPORT,")
    full=$(count "$d/conn.log" '"bytes_in":65536,')
    readable=$("${LOAD[@]}" gzcheck "$d"/rec/prot_* | awk '$2 != "error" && $2 >= 65536' | wc -l)
    say "crash: $killed children SIGKILLed, clients: $(cat "$d/hold.out" | tail -1)"
    check crash "entries $(wc -l < "$d/conn.log"), crashed $crashed, with destination $withdest, bytes_in 65536: $full" \
        $([ "$crashed" = 200 ] && [ "$withdest" = 200 ] && [ "$full" = 200 ]; echo $?)
    check crash "recordings readable up to the last flush (all 65536 client bytes): $readable of 200" \
        $([ "$readable" = 200 ]; echo $?)
    stop_daemon "$DPID"
fi

# 3. disk full while recording (a 1 MiB tmpfs)
if [[ " $ONLY " == *" diskfull "* ]]; then
    d=$WORK/diskfull; mkdir -p "$d/full"
    if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$d/full" 2>/dev/null; then
        MOUNTED=$d/full
        start_daemon "$d" -f "$d/full/prot" -L -M -c "$d/conn.log" -C json
        "${LOAD[@]}" run "$DPORT" --n 40 --conc 8 --big-every 1 --big-bytes $((1 << 20)) > "$d/run.out"
        wait_until 30 lines_ge "$d/conn.log" 40
        wait_until 30 kids_eq "$DPID" 0
        lines=$(count "$d/stderr" 'cannot write data log')
        say "diskfull: client $(cat "$d/run.out")"
        check diskfull "relay byte-exact: $(awk '{print $4}' "$d/run.out") of 40 ok; statuses $(statuses "$d/conn.log")" \
            $([ "$(awk '{print $4}' "$d/run.out")" = 40 ]; echo $?)
        check diskfull "log lines for the episode: $lines" $([ "$lines" = 1 ]; echo $?)
        rm -f "$d"/full/prot_*
        "${LOAD[@]}" run "$DPORT" --n 5 --conc 1 > "$d/after.out"
        wait_until 30 lines_ge "$d/conn.log" 45
        okafter=$(tail -5 "$d/conn.log" | grep -c '"status":"ok"')
        check diskfull "space freed: next 5 connections ok: $okafter" $([ "$okafter" = 5 ]; echo $?)
        stop_daemon "$DPID"
        umount "$d/full"; MOUNTED=
    else
        say "diskfull: skipped (needs root to mount a tmpfs)"
    fi
fi

# 4. out of descriptors (RLIMIT_NOFILE) and out of processes (RLIMIT_NPROC)
if [[ " $ONLY " == *" limits "* ]]; then
    d=$WORK/nofile; mkdir -p "$d"
    start_daemon "$d" -c "$d/conn.log" -C json
    "${LOAD[@]}" run "$DPORT" --n 1 --conc 1 > /dev/null
    wait_until 10 lines_ge "$d/conn.log" 1
    n=$(fds "$DPID")
    hard=$(prlimit --pid "$DPID" --nofile --output HARD --noheadings | tr -d ' ')
    prlimit --pid "$DPID" --nofile="$n:$hard"
    "${LOAD[@]}" hold "$DPORT" --n 20 --send 100 --release "$d/release" > "$d/hold.out" &
    hp=$!; PIDS+=("$hp")
    wait_until 30 has_line "$d/hold.out" READY
    c0=$(cpu_ticks "$DPID"); sleep 3; c1=$(cpu_ticks "$DPID")
    lines=$(count "$d/stderr" 'cannot accept')
    prlimit --pid "$DPID" --nofile="4096:$hard"
    touch "$d/release"; wait "$hp"
    wait_until 30 lines_ge "$d/conn.log" 21
    ok=$(count "$d/conn.log" '"status":"ok"')
    say "nofile: limit $n descriptors, clients: $(tail -1 "$d/hold.out")"
    check nofile "parent CPU during 3 s at the limit: $(((c1 - c0) * 10)) ms" $([ $((c1 - c0)) -le 30 ]; echo $?)
    check nofile "log lines for the episode: $lines" $([ "$lines" = 1 ]; echo $?)
    check nofile "after the limit went away: $ok of 21 entries ok" $([ "$ok" = 21 ]; echo $?)
    stop_daemon "$DPID"

    d=$WORK/nproc; mkdir -p "$d"; chmod 777 "$d"
    if [ "$(id -u)" = 0 ] && id nobody > /dev/null 2>&1; then
        # root ignores RLIMIT_NPROC, and raising a limit of a running process
        # takes CAP_SYS_RESOURCE: run as nobody with room for the parent and
        # two children; the limit goes away when those two end
        others=$(ps -u nobody -o pid= | wc -l)
        PRELUDE="ulimit -u $((others + 3));" start_daemon "$d" -c "$d/conn.log" -C json --user nobody
        "${LOAD[@]}" hold "$DPORT" --n 2 --send 100 --release "$d/release1" > "$d/hold1.out" &
        h1=$!; PIDS+=("$h1")
        wait_until 30 kids_eq "$DPID" 2
        "${LOAD[@]}" hold "$DPORT" --n 20 --send 100 --release "$d/release2" > "$d/hold2.out" &
        h2=$!; PIDS+=("$h2")
        wait_until 30 has_line "$d/hold2.out" READY
        c0=$(cpu_ticks "$DPID"); sleep 3; c1=$(cpu_ticks "$DPID")
        lines=$(count "$d/stderr" 'cannot fork')
        touch "$d/release1" "$d/release2"; wait "$h1" "$h2"
        wait_until 30 kids_eq "$DPID" 0
        # one at a time: a child counts until it is reaped
        "${LOAD[@]}" run "$DPORT" --n 20 --conc 1 > "$d/after.out"
        wait_until 30 lines_ge "$d/conn.log" 42
        say "nproc: room for 2 children, 20 more clients during the episode: $(tail -1 "$d/hold2.out"); statuses $(statuses "$d/conn.log")"
        check nproc "parent CPU during 3 s at the limit: $(((c1 - c0) * 10)) ms" $([ $((c1 - c0)) -le 30 ]; echo $?)
        check nproc "log lines for the episode: $lines" $([ "$lines" = 1 ]; echo $?)
        check nproc "entries for all 42 connections: $(wc -l < "$d/conn.log"); after the limit went away: $(awk '{print $4}' "$d/after.out") of 20 ok" \
            $([ "$(wc -l < "$d/conn.log")" = 42 ] && [ "$(awk '{print $4}' "$d/after.out")" = 20 ]; echo $?)
        stop_daemon "$DPID"
    else
        say "nproc: skipped (needs root and user nobody: root ignores RLIMIT_NPROC)"
    fi
fi

# 5. 1,000 idle clients with --max-connections 512
if [[ " $ONLY " == *" idle "* ]]; then
    d=$WORK/idle; mkdir -p "$d"
    start_daemon "$d" -c "$d/conn.log" -C json --max-connections 512
    fd0=$(fds "$DPID")
    "${LOAD[@]}" idle "$DPORT" --n 1000 --release "$d/release" --max-hold 120 > "$d/idle.out" &
    hp=$!; PIDS+=("$hp")
    wait_until 60 has_line "$d/idle.out" READY
    wait_until 60 kids_eq "$DPID" 512
    k=$(nkids "$DPID"); fdmid=$(fds "$DPID")
    c0=$(cpu_ticks "$DPID"); sleep 2; c1=$(cpu_ticks "$DPID")
    touch "$d/release"; wait "$hp"
    wait_until 120 lines_ge "$d/conn.log" 1000
    wait_until 60 kids_eq "$DPID" 0
    fd1=$(fds "$DPID")
    say "idle: 1000 clients connected, $k children at the cap, parent CPU $(((c1 - c0) * 10)) ms over 2 s"
    check idle "parent alive: $([ -d /proc/$DPID ] && echo yes || echo no); fds $fd0 -> $fdmid (at the cap) -> $fd1" \
        $([ -d "/proc/$DPID" ] && [ "$fd0" = "$fdmid" ] && [ "$fd0" = "$fd1" ]; echo $?)
    check idle "entries $(wc -l < "$d/conn.log") of 1000, statuses $(statuses "$d/conn.log")" \
        $([ "$(wc -l < "$d/conn.log")" = 1000 ]; echo $?)
    stop_daemon "$DPID"
fi

# 6. kill $(cat pidfile) during a burst
if [[ " $ONLY " == *" term "* ]]; then
    d=$WORK/term; mkdir -p "$d"
    DPORT=$(free_port)
    "$BIN" -p "$DPORT@127.0.0.1" -P "$BPORT@127.0.0.1" -c "$d/conn.log" -C json -Dp "$d/pid" --max-connections 0 2> "$d/stderr" ||
        { say "soak: ipprotd -Dp did not start: $(cat "$d/stderr")"; exit 1; }
    dpid=$(cat "$d/pid"); PIDS+=("$dpid")
    "${LOAD[@]}" run "$DPORT" --n 3000 --conc 64 > "$d/run.out" &
    lp=$!
    wait_until 30 lines_ge "$d/conn.log" 300
    kill "$(cat "$d/pid")"
    wait "$lp"
    gone() { ! pgrep -f -- "-c $d/conn.log" > /dev/null; }
    wait_until 60 gone
    entries=$(wc -l < "$d/conn.log")
    killed=$(count "$d/conn.log" '"status":"killed"')
    say "term: SIGTERM after 300 entries; client $(cat "$d/run.out")"
    cok=$(awk '{print $4}' "$d/run.out")
    check term "accepted (entries) $entries, killed $killed, served ok by the client's count $cok, pid file left: $([ -e "$d/pid" ] && echo yes || echo no)" \
        $([ "$killed" = 0 ] && [ "$cok" = "$(count "$d/conn.log" '"status":"ok"')" ] && [ ! -e "$d/pid" ]; echo $?)
fi

say "soak: $FAILS failed checks"
[ "$FAILS" = 0 ]
