#!/usr/bin/env bash
# Benchmark harness for ipprotd against direct / socat / simpleproxy / haproxy.
# See contrib/bench/README.md. Loopback only; every process it starts is
# tracked by PID and ended on exit.
#
# Environment knobs (defaults in brackets):
#   IPPROTD       ipprotd binary [../../target/release/ipprotd from this script]
#   BUILD         auto|0: build ipprotd with cargo if the default path is missing [auto]
#   INSTALL       1|0: apt-get install missing tools [1]
#   DURATION      seconds per iperf3 run [5]
#   WRK_DURATION  seconds per wrk run [$DURATION]
#   RTT_N         round trips for the latency test [5000]
#   IDLE_CONNS    idle connections for the PSS test [200]
#   REC_MB        MB (10^6 bytes) per recording data set [200]
#   PEERS         subset of "direct ipprotd socat simpleproxy haproxy haproxy-splice rinetd"
#   TESTS         subset of "bulk cps p99 rtt pss rec"
#   HAPROXY_NBTHREAD  haproxy nbthread [1]
#   SOCAT_LISTEN_OPTS extra socat TCP-LISTEN options, e.g. backlog=128 []
#   MAX_SECONDS   skip remaining steps once measuring has taken this long [600]
#   OUT           markdown output file [results-latest.md beside this script]
#   KEEP_WORK     1: keep the scratch directory (raw outputs, logs) [0]
set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
DEFAULT_IPPROTD="$REPO_ROOT/target/release/ipprotd"
IPPROTD_EXPLICIT=${IPPROTD+set}
IPPROTD=${IPPROTD:-$DEFAULT_IPPROTD}
BUILD=${BUILD:-auto}
INSTALL=${INSTALL:-1}
DURATION=${DURATION:-5}
WRK_DURATION=${WRK_DURATION:-$DURATION}
RTT_N=${RTT_N:-5000}
RTT_SIZE=64
IDLE_CONNS=${IDLE_CONNS:-200}
REC_MB=${REC_MB:-200}
ALL_PEERS="direct ipprotd socat simpleproxy haproxy haproxy-splice rinetd"
PEERS=${PEERS:-$ALL_PEERS}
TESTS=${TESTS:-"bulk cps p99 rtt pss rec"}
# clients of the latency-under-load run (wrk -c P99_CLIENTS --latency)
P99_CLIENTS=${P99_CLIENTS:-32}
HAPROXY_NBTHREAD=${HAPROXY_NBTHREAD:-1}
SOCAT_LISTEN_OPTS=${SOCAT_LISTEN_OPTS:-}
MAX_SECONDS=${MAX_SECONDS:-600}
OUT=${OUT:-$SCRIPT_DIR/results-latest.md}
KEEP_WORK=${KEEP_WORK:-0}
HELPER="$SCRIPT_DIR/benchnet.py"
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C

declare -A R=()       # results: R[test,peer]
declare -a NOTES=()
declare -a PIDS=()    # every background process we started
declare -A USED_PORTS=()
PROXY_PID=""
PROXY_PORT=""
WORK=""
SETUP_SECONDS=0

log() { printf '[%s %3ds] %s\n' "$(date +%T)" "$SECONDS" "$*" >&2; }
note() { NOTES+=("$*"); log "NOTE: $*"; }
has() { [[ " $2 " == *" $1 "* ]]; }
isnum() { [[ ${1:-} =~ ^-?[0-9]+([.][0-9]+)?$ ]]; }
now_ns() { date +%s%N; }
# calc EXPR: awk arithmetic, 3 decimals
calc() { awk "BEGIN{printf \"%.3f\", $1}"; }
# fmt VALUE DECIMALS: numbers rounded, anything else passed through
fmt() {
    local v=${1:-} d=${2:-2}
    if isnum "$v"; then awk -v v="$v" "BEGIN{printf \"%.${d}f\", v}"; else printf '%s' "${v:-n/a}"; fi
}
# ratio A B: A/B with 2 decimals or n/a
ratio() {
    if isnum "${1:-}" && isnum "${2:-}" && awk -v b="$2" 'BEGIN{exit !(b>0)}'; then
        awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'
    else printf 'n/a'; fi
}
budget_ok() {
    if (( SECONDS > MAX_SECONDS )); then
        note "time budget MAX_SECONDS=$MAX_SECONDS exceeded: skipped $1"
        return 1
    fi
}

# ---------------------------------------------------------------- processes
# "pid ppid" for every process
ppid_table() {
    if command -v ps >/dev/null; then
        ps -e -o pid=,ppid=
    else
        local d s rest st pp
        for d in /proc/[0-9]*; do
            { read -r s <"$d/stat"; } 2>/dev/null || continue
            rest=${s##*) }
            read -r st pp _ <<<"$rest"
            echo "${d#/proc/} $pp"
        done
    fi
}
# tree_pids ROOT: ROOT and all its descendants
tree_pids() {
    ppid_table | awk -v root="$1" '
        { kids[$2] = kids[$2] " " $1 }
        END {
            q[0] = root; n = 1
            for (i = 0; i < n && i < 100000; i++) {
                printf "%s ", q[i]
                m = split(kids[q[i]], k, " ")
                for (j = 1; j <= m; j++) q[n++] = k[j]
            }
        }'
}
child_count() { ppid_table | awk -v p="$1" '$2 == p {n++} END {print n+0}'; }
track() { PIDS+=("$1"); }
untrack() {
    local p keep=()
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
# kill_tree PID: TERM the process and its descendants, KILL after 2 s
kill_tree() {
    local root=$1 pids i alive p
    kill -0 "$root" 2>/dev/null || { wait "$root" 2>/dev/null; return 0; }
    pids=$(tree_pids "$root")
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null
    for ((i = 0; i < 40; i++)); do
        alive=""
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive+=" $p"; done
        [[ -z $alive ]] && break
        sleep 0.05
    done
    # shellcheck disable=SC2086
    [[ -n $alive ]] && kill -KILL $alive 2>/dev/null
    wait "$root" 2>/dev/null
    return 0
}
stop_pid() { [[ -n ${1:-} ]] || return 0; kill_tree "$1"; untrack "$1"; }

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM HUP
    trap "" PIPE
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill_tree "${PIDS[i]}"; done
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ $KEEP_WORK == 1 ]]; then log "scratch kept in $WORK"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# ---------------------------------------------------------------- ports
# listening_on PORT: a socket in LISTEN state on local port PORT
listening_on() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v h="$hex" '$4 == "0A" && substr($2, length($2) - 4) == h {f = 1; exit} END {exit !f}' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
port_in_use() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v h="$hex" 'substr($2, length($2) - 4) == h {f = 1; exit} END {exit !f}' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
# pick_port VAR: a free port in 20000-31999 (below the ephemeral range)
pick_port() {
    local p i
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ -n ${USED_PORTS[$p]:-} ]] && continue
        port_in_use "$p" && continue
        USED_PORTS[$p]=1
        printf -v "$1" '%d' "$p"
        return 0
    done
    return 1
}
# wait_listen PORT PID: up to 5 s for PORT to listen while PID lives
wait_listen() {
    local i
    for ((i = 0; i < 100; i++)); do
        listening_on "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# ---------------------------------------------------------------- setup
install_deps() {
    local -A pkg_of=([socat]=socat [simpleproxy]=simpleproxy [haproxy]=haproxy [iperf3]=iperf3
        [wrk]=wrk [gzip]=gzip [bzip2]=bzip2 [python3]=python3 [ps]=procps [rinetd]=rinetd)
    local c missing=() need_nginx=0 sudo=""
    for c in "${!pkg_of[@]}"; do command -v "$c" >/dev/null || missing+=("${pkg_of[$c]}"); done
    command -v nginx >/dev/null || need_nginx=1
    ((${#missing[@]} + need_nginx)) || return 0
    if [[ $INSTALL != 1 ]]; then
        log "missing: ${missing[*]} $( ((need_nginx)) && echo nginx); INSTALL=0, not installing"
        return 0
    fi
    if ((EUID != 0)); then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"
        else log "not root and no sudo: cannot install ${missing[*]}"; return 0; fi
    fi
    log "installing: ${missing[*]} $( ((need_nginx)) && echo nginx-light)"
    local apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o Dpkg::Use-Pty=0)
    timeout 300 "${apt[@]}" update >"$WORK/apt.log" 2>&1 || log "apt-get update failed (see log)"
    if ((${#missing[@]})); then
        timeout 600 "${apt[@]}" install --no-install-recommends "${missing[@]}" >>"$WORK/apt.log" 2>&1 ||
            log "apt-get install ${missing[*]} failed"
    fi
    if ((need_nginx)); then
        timeout 600 "${apt[@]}" install --no-install-recommends nginx-light >>"$WORK/apt.log" 2>&1 ||
            timeout 600 "${apt[@]}" install --no-install-recommends nginx >>"$WORK/apt.log" 2>&1 ||
            log "could not install nginx-light or nginx"
    fi
}

setup_ipprotd() {
    if [[ ! -x $IPPROTD && -z $IPPROTD_EXPLICIT && $BUILD != 0 ]] && command -v cargo >/dev/null; then
        log "building ipprotd (cargo build --release in $REPO_ROOT)"
        if ! (cd "$REPO_ROOT" && timeout 1200 cargo build --release) >"$WORK/cargo.log" 2>&1; then
            note "cargo build --release failed; last lines: $(tail -n 3 "$WORK/cargo.log" | tr '\n' ' ')"
        fi
    fi
    if [[ -x $IPPROTD ]]; then
        HAVE_IPPROTD=1
    else
        HAVE_IPPROTD=0
        note "ipprotd binary not found at $IPPROTD: ipprotd rows and recording-through-ipprotd rows skipped"
    fi
}

peer_available() {
    case $1 in
        direct) return 0 ;;
        ipprotd | ipprotd-rec) ((HAVE_IPPROTD)) ;;
        haproxy-splice) command -v haproxy >/dev/null ;;
        *) command -v "$1" >/dev/null ;;
    esac
}

write_haproxy_cfg() { # FILE LISTEN TARGET [SPLICE]
    cat >"$1" <<EOF
global
    nbthread $HAPROXY_NBTHREAD
    maxconn 4096
defaults
    mode tcp${4:+
    option splice-request
    option splice-response}
    timeout connect 5s
    timeout client 2m
    timeout server 2m
listen bench
    bind 127.0.0.1:$2
    server backend 127.0.0.1:$3
EOF
}

# start_proxy PEER TARGET_PORT [extra ipprotd args]: sets PROXY_PID, PROXY_PORT
start_proxy() {
    local peer=$1 tp=$2 lp logf
    shift 2
    PROXY_PID=""
    PROXY_PORT=$tp
    [[ $peer == direct ]] && return 0
    pick_port lp || { note "no free port for $peer"; return 1; }
    logf="$WORK/$peer.$lp.log"
    case $peer in
        ipprotd) "$IPPROTD" -p "$lp" -P "$tp@127.0.0.1" "$@" >"$logf" 2>&1 & ;;
        socat) socat "TCP-LISTEN:$lp,bind=127.0.0.1,fork,reuseaddr${SOCAT_LISTEN_OPTS:+,$SOCAT_LISTEN_OPTS}" \
            "TCP:127.0.0.1:$tp" >"$logf" 2>&1 & ;;
        simpleproxy) simpleproxy -L "127.0.0.1:$lp" -R "127.0.0.1:$tp" >"$logf" 2>&1 & ;;
        ipprotd-rec)
            mkdir -p "$WORK/rec.$lp"
            "$IPPROTD" -p "$lp" -P "$tp@127.0.0.1" -f "$WORK/rec.$lp/prot" -L -M "$@" >"$logf" 2>&1 & ;;
        haproxy | haproxy-splice)
            write_haproxy_cfg "$WORK/haproxy.$lp.cfg" "$lp" "$tp" "${peer#haproxy}"
            haproxy -db -f "$WORK/haproxy.$lp.cfg" >"$logf" 2>&1 & ;;
        rinetd)
            # generated config: one forwarding rule, no log file
            printf '127.0.0.1 %s 127.0.0.1 %s\n' "$lp" "$tp" >"$WORK/rinetd.$lp.conf"
            rinetd -f -c "$WORK/rinetd.$lp.conf" >"$logf" 2>&1 & ;;
        *) note "unknown peer $peer"; return 1 ;;
    esac
    PROXY_PID=$!
    track "$PROXY_PID"
    if ! wait_listen "$lp" "$PROXY_PID"; then
        note "$peer did not listen on $lp: $(head -c 300 "$logf" | tr '\n' ' ')"
        stop_pid "$PROXY_PID"
        PROXY_PID=""
        return 1
    fi
    PROXY_PORT=$lp
}
stop_proxy() { stop_pid "$PROXY_PID"; PROXY_PID=""; }

# start_server VAR LABEL CMD... (CMD may contain the word PORT): sets VAR to the pid
start_server() {
    local var=$1 label=$2 port pid
    shift 2
    pick_port port || return 1
    local args=() a
    for a in "$@"; do args+=("${a//PORT/$port}"); done
    "${args[@]}" >"$WORK/$label.log" 2>&1 &
    pid=$!
    track "$pid"
    if ! wait_listen "$port" "$pid"; then
        note "$label did not start: $(head -c 300 "$WORK/$label.log" | tr '\n' ' ')"
        stop_pid "$pid"
        return 1
    fi
    printf -v "$var" '%d' "$pid"
    printf -v "${var}_PORT" '%d' "$port"
}

# ---------------------------------------------------------------- tests
# proc_cpu PID: CPU ticks of PID plus those of the children it reaped
# (utime stime cutime cstime of /proc/PID/stat)
proc_cpu() { awk '{sub(/^.*\) /, ""); print $12 + $13 + $14 + $15}' "/proc/$1/stat" 2>/dev/null; }

# iperf_run KEY PEER N [iperf3 args...]: one iperf3 run through the proxy
# running now; R[KEY,PEER] = Gbit/s and, for a proxy, R[cpu-KEY,PEER] =
# CPU seconds of its process tree per GB moved (its connection children
# counted once the parent has reaped them)
iperf_run() {
    local key=$1 peer=$2 n=$3 out v try c0 c1 bytes i
    shift 3
    out="$WORK/iperf.$key.$peer.json"
    for try in 1 2; do
        c0=""
        [[ -n $PROXY_PID ]] && c0=$(proc_cpu "$PROXY_PID")
        timeout $((DURATION + 20)) iperf3 -c 127.0.0.1 -p "$PROXY_PORT" -t "$DURATION" \
            -P "$n" --json "$@" >"$out" 2>"$out.err"
        v=$(python3 "$HELPER" iperf-gbps "$out")
        [[ $v == *busy* ]] || break
        sleep 1
    done
    if isnum "$v"; then R[$key,$peer]=$v; else R[$key,$peer]=fail; note "iperf3 $peer $key: $v"; fi
    if [[ -n $c0 ]] && isnum "$v"; then
        # the connection children must have ended (and closed their data logs)
        for ((i = 0; i < 500; i++)); do (($(child_count "$PROXY_PID") == 0)) && break; sleep 0.02; done
        c1=$(proc_cpu "$PROXY_PID")
        bytes=$(python3 "$HELPER" iperf-gbps "$out" --bytes)
        isnum "$c1" && isnum "$bytes" && R[cpu-$key,$peer]=$(calc "($c1 - $c0) / $CLK_TCK / ($bytes / 1e9)")
    fi
    log "bulk $peer $key: $v Gbit/s${R[cpu-$key,$peer]:+, ${R[cpu-$key,$peer]} CPU s/GB}"
    sleep 0.3
}

test_bulk() {
    log "== bulk throughput (iperf3, ${DURATION}s, 1 and 4 connections)"
    local peer SRV="" logdir
    for peer in $PEERS; do
        [[ $peer == ipprotd-rec ]] && continue
        peer_available "$peer" || continue
        budget_ok "bulk/$peer" || break
        start_server SRV "iperf3-$peer" iperf3 -s -B 127.0.0.1 -p PORT || continue
        if start_proxy "$peer" "$SRV_PORT"; then
            iperf_run bulk1 "$peer" 1
            iperf_run bulk4 "$peer" 4
            # towards the client (iperf3 -R), and recorded both ways
            [[ $peer == ipprotd ]] && iperf_run bulk1R "$peer" 1 -R
            stop_proxy
        fi
        if [[ $peer == ipprotd ]] && has rec "$TESTS"; then
            logdir="$WORK/datalog.iperf"
            mkdir -p "$logdir"
            if start_proxy "$peer" "$SRV_PORT" -f "$logdir/prot" -L -M; then
                iperf_run rec1 "$peer" 1
                rm -f "$logdir"/prot_*
                iperf_run rec1R "$peer" 1 -R
                stop_proxy
            fi
            rm -rf "$logdir"
        fi
        stop_pid "$SRV"
    done
}

start_nginx() {
    local d="$WORK/nginx" port pid
    mkdir -p "$d/www" "$d/tmp"
    printf 'ipprotd bench\n' >"$d/www/index.html"
    chmod 755 "$WORK" "$d" "$d/www"
    chmod 644 "$d/www/index.html"
    pick_port port || return 1
    cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    server {
        listen 127.0.0.1:$port backlog=1024;
        root $d/www;
    }
}
EOF
    nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" >"$d/stdout.log" 2>&1 &
    pid=$!
    track "$pid"
    if ! wait_listen "$port" "$pid"; then
        note "nginx did not start: $(tail -c 300 "$d/error.log" "$d/stdout.log" 2>/dev/null | tr '\n' ' ')"
        stop_pid "$pid"
        return 1
    fi
    NGINX_PID=$pid
    NGINX_PORT=$port
}

# cpu_ticks PID: utime+stime+cutime+cstime of PID (clock ticks); the
# times of reaped children are in cutime/cstime, so for a fork-per-connection
# proxy this is the whole tree once its children are gone
cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null; }
# faults PID: minflt+cminflt of PID (page faults, reaped children included)
faults() { awk '{print $10 + $11}' "/proc/$1/stat" 2>/dev/null; }
# settle PID: up to 3 s for the proxy's connection children to be reaped
settle() {
    local i
    for ((i = 0; i < 60; i++)); do (($(child_count "$1") == 0)) && return 0; sleep 0.05; done
    return 1
}
# wrk_requests FILE: how many requests wrk completed
wrk_requests() { awk '/ requests in / {print $1}' "$1"; }

# fork_floor: CPU per fork+_exit+wait of a program doing nothing else
# (forkfloor.c, dynamic and static), the floor under any fork per connection
fork_floor() {
    command -v cc >/dev/null || { note "no C compiler: fork floor not measured"; return; }
    local kind flags
    for kind in dynamic static; do
        flags=""
        [[ $kind == static ]] && flags=-static
        # shellcheck disable=SC2086
        cc -O2 $flags -o "$WORK/forkfloor.$kind" "$SCRIPT_DIR/forkfloor.c" 2>/dev/null || continue
        read -r R[floor,$kind] R[floorflt,$kind] <<<"$(timeout 60 "$WORK/forkfloor.$kind" 3000)"
        log "fork floor ($kind C program): ${R[floor,$kind]} us CPU, ${R[floorflt,$kind]} faults per fork+exit"
    done
}

test_cps() {
    fork_floor
    log "== short connections/s (wrk -c 8 -t 2 -d ${WRK_DURATION}s, Connection: close, nginx)"
    command -v wrk >/dev/null && command -v nginx >/dev/null || { note "wrk or nginx missing: cps skipped"; return; }
    NGINX_PID=""
    start_nginx || return
    local peer out v errs max c0 c1 f0 f1 n tck
    tck=$(getconf CLK_TCK)
    for peer in $PEERS; do
        [[ $peer == ipprotd-rec ]] && continue
        peer_available "$peer" || continue
        budget_ok "cps/$peer" || break
        start_proxy "$peer" "$NGINX_PORT" || continue
        out="$WORK/wrk.$peer.txt"
        c0=""
        [[ -n $PROXY_PID ]] && c0=$(cpu_ticks "$PROXY_PID") && f0=$(faults "$PROXY_PID")
        timeout $((WRK_DURATION + 20)) wrk -c 8 -t 2 -d "${WRK_DURATION}s" -H 'Connection: close' \
            "http://127.0.0.1:$PROXY_PORT/index.html" >"$out" 2>&1
        n=$(wrk_requests "$out")
        if [[ -n $c0 ]] && settle "$PROXY_PID" && isnum "$n" && ((n > 0)); then
            c1=$(cpu_ticks "$PROXY_PID")
            f1=$(faults "$PROXY_PID")
            R[cpu,$peer]=$(calc "($c1 - $c0) * 1000000.0 / $tck / $n")
            R[flt,$peer]=$(calc "($f1 - $f0) / $n")
        fi
        v=$(awk '/^Requests\/sec:/ {print $2}' "$out")
        errs=$(awk '/Socket errors:|Non-2xx/ {sub(/^ +/, ""); printf "%s; ", $0}' "$out")
        max=$(awk '$1 == "Latency" {print $4}' "$out")
        if isnum "$v"; then R[cps,$peer]=$v; else R[cps,$peer]=fail; note "wrk $peer: $(tail -c 200 "$out" | tr '\n' ' ')"; fi
        [[ -n $errs ]] && note "wrk via $peer: $errs"
        [[ $max == *[0-9]s && $max != *ms && $max != *us ]] && note "wrk via $peer: max latency $max (>= 1 s: dropped SYNs / listen backlog?)"
        log "cps $peer: $v req/s (max latency $max), proxy CPU ${R[cpu,$peer]:-n/a} us/conn, ${R[flt,$peer]:-n/a} faults/conn"
        stop_proxy
        sleep 0.3
    done
    stop_pid "$NGINX_PID"
}

# wrk_p99_ms FILE: the 99% latency of wrk --latency in ms
wrk_p99_ms() {
    awk '$1 == "99%" {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
        if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000
        printf "%.3f", v; exit }' "$1"
}

test_p99() {
    log "== latency under load (wrk -c $P99_CLIENTS -t 2 -d ${WRK_DURATION}s --latency, Connection: close, nginx)"
    command -v wrk >/dev/null && command -v nginx >/dev/null || { note "wrk or nginx missing: p99 skipped"; return; }
    NGINX_PID=""
    start_nginx || return
    local peer out v
    for peer in $PEERS; do
        [[ $peer == ipprotd-rec ]] && continue
        peer_available "$peer" || continue
        budget_ok "p99/$peer" || break
        start_proxy "$peer" "$NGINX_PORT" || continue
        out="$WORK/wrk32.$peer.txt"
        timeout $((WRK_DURATION + 20)) wrk -c "$P99_CLIENTS" -t 2 -d "${WRK_DURATION}s" --latency \
            -H 'Connection: close' "http://127.0.0.1:$PROXY_PORT/index.html" >"$out" 2>&1
        v=$(wrk_p99_ms "$out")
        if isnum "$v"; then R[p99,$peer]=$v; else R[p99,$peer]=fail; note "wrk -c $P99_CLIENTS $peer: $(tail -c 200 "$out" | tr '\n' ' ')"; fi
        R[cps32,$peer]=$(awk '/^Requests\/sec:/ {print $2}' "$out")
        log "p99 $peer: $v ms at $P99_CLIENTS clients (${R[cps32,$peer]} req/s)"
        settle "$PROXY_PID"
        stop_proxy
        sleep 0.3
    done
    stop_pid "$NGINX_PID"
}

test_rtt() {
    log "== round-trip latency ($RTT_N x $RTT_SIZE bytes, one connection)"
    local peer v
    for peer in $PEERS; do
        [[ $peer == ipprotd-rec ]] && continue
        peer_available "$peer" || continue
        budget_ok "rtt/$peer" || break
        start_proxy "$peer" "$ECHO_PORT" || continue
        v=$(timeout 120 python3 "$HELPER" rtt "$PROXY_PORT" --n "$RTT_N" --size "$RTT_SIZE" 2>&1)
        if [[ $v =~ ^[0-9.]+\ [0-9.]+\ [0-9.]+$ ]]; then
            read -r R[rtt,$peer] R[rttp50,$peer] R[rttp99,$peer] <<<"$v"
        else
            R[rtt,$peer]=fail
            note "rtt $peer: $v"
        fi
        log "rtt $peer: mean/p50/p99 us = $v"
        stop_proxy
    done
}

# pss_sum PID: prints "KiB processes" summed over the process tree
pss_sum() {
    local p files=()
    for p in $(tree_pids "$1"); do files+=("/proc/$p/smaps_rollup"); done
    cat "${files[@]}" 2>/dev/null | awk '/^Pss:/ {s += $2; n++} END {print s + 0, n + 0}'
}

test_pss() {
    log "== PSS per idle connection ($IDLE_CONNS connections)"
    local peer base after rel hp i out kb np peers=$PEERS
    # recording connections (-f -L -M) get their own row
    has ipprotd "$PEERS" && ! has ipprotd-rec "$PEERS" && peers+=" ipprotd-rec"
    for peer in $peers; do
        [[ $peer == direct ]] && continue
        peer_available "$peer" || continue
        budget_ok "pss/$peer" || break
        start_proxy "$peer" "$ECHO_PORT" || continue
        # warm up: a few connections come and go before the baseline
        timeout 30 python3 "$HELPER" hold "$PROXY_PORT" --n 4 >/dev/null 2>&1
        for ((i = 0; i < 40; i++)); do (($(child_count "$PROXY_PID") == 0)) && break; sleep 0.05; done
        sleep 0.3
        read -r base _ <<<"$(pss_sum "$PROXY_PID")"
        rel="$WORK/release.$peer"
        out="$WORK/hold.$peer.out"
        rm -f "$rel"
        timeout 90 python3 "$HELPER" hold "$PROXY_PORT" --n "$IDLE_CONNS" --release "$rel" --max-hold 60 >"$out" 2>&1 &
        hp=$!
        track "$hp"
        for ((i = 0; i < 600; i++)); do
            grep -q '^READY\|^FAIL\|^ERR' "$out" 2>/dev/null && break
            kill -0 "$hp" 2>/dev/null || break
            sleep 0.05
        done
        if grep -q '^READY' "$out"; then
            sleep 1
            read -r after np <<<"$(pss_sum "$PROXY_PID")"
            kb=$(calc "($after - $base) / $IDLE_CONNS")
            R[pss,$peer]=$kb
            R[procs,$peer]=$np
            R[pssbase,$peer]=$base
            log "pss $peer: base ${base} KiB, with $IDLE_CONNS conns ${after} KiB in $np processes -> $kb KiB/conn"
        else
            R[pss,$peer]=fail
            note "pss $peer: client did not get $IDLE_CONNS connections up: $(head -c 200 "$out")"
        fi
        touch "$rel"
        for ((i = 0; i < 100; i++)); do kill -0 "$hp" 2>/dev/null || break; sleep 0.05; done
        stop_pid "$hp"
        stop_proxy
    done
}

make_data() {
    local bytes=$((REC_MB * 1000000)) i
    log "generating ${REC_MB} MB random and text data"
    head -c "$bytes" /dev/urandom >"$WORK/random.bin"
    : >"$WORK/text.txt"
    if [[ -d /usr/share/man ]]; then
        for ((i = 0; i < 20; i++)); do
            find /usr/share/man -type f -print0 2>/dev/null | sort -z | xargs -0 -r zcat -f 2>/dev/null
        done | head -c "$bytes" >"$WORK/text.txt"
    fi
    if (($(stat -c %s "$WORK/text.txt") < bytes)); then
        note "not enough man pages: text data generated by benchnet.py gen-text"
        python3 "$HELPER" gen-text "$WORK/text.txt" "$bytes"
    else
        TEXT_SOURCE="man pages from /usr/share/man, decompressed and concatenated"
    fi
    cat "$WORK/random.bin" "$WORK/text.txt" >/dev/null
}

# rec_run DATA LABEL DIR [ipprotd args...]: relays DATA through ipprotd (or
# direct) from a source to a sink; DIR up: the client sends DATA to the
# server (R[rec,...]), down: the server sends it to the client (R[recdown,...])
rec_run() {
    local data=$1 label=$2 dir=$3 srv="" t0 t1 wd rc logdir mode_args=() key=rec sinklog
    shift 3
    [[ $dir == down ]] && key=recdown
    local bytes
    bytes=$(stat -c %s "$WORK/$data")
    if [[ $dir == up ]]; then
        sinklog="$WORK/sink-$label.log"
        start_server srv "sink-$label" socat -d -d -d -u -b 131072 "TCP-LISTEN:PORT,bind=127.0.0.1,reuseaddr" OPEN:/dev/null,wronly || return 1
    else
        sinklog="$WORK/client-sink-$label.log"
        start_server srv "source-$label" socat -u -b 131072 "OPEN:$WORK/$data,rdonly" "TCP-LISTEN:PORT,bind=127.0.0.1,reuseaddr" || return 1
    fi
    if [[ $label == direct ]]; then
        PROXY_PID=""
        PROXY_PORT=$srv_PORT
    else
        logdir="$WORK/datalog.$label"
        if [[ $label != unrecorded ]]; then
            mkdir -p "$logdir"
            mode_args=(-f "$logdir/prot" -L -M "$@")
        fi
        start_proxy ipprotd "$srv_PORT" "${mode_args[@]}" || { stop_pid "$srv"; return 1; }
    fi
    t0=$(now_ns)
    if [[ $dir == up ]]; then
        timeout 300 socat -u -b 131072 "OPEN:$WORK/$data,rdonly" "TCP:127.0.0.1:$PROXY_PORT"
    else
        timeout 300 socat -d -d -d -u -b 131072 "TCP:127.0.0.1:$PROXY_PORT" OPEN:/dev/null,wronly 2>"$sinklog"
    fi
    rc=$?
    (sleep 300; kill "$srv" 2>/dev/null) &
    wd=$!
    track "$wd"
    wait "$srv" 2>/dev/null
    t1=$(now_ns)
    stop_pid "$wd"
    untrack "$srv"
    if [[ -n $PROXY_PID ]] && (($(child_count "$PROXY_PID") > 0)); then
        # the connection's child may still be finishing its data log
        local i
        for ((i = 0; i < 6000; i++)); do (($(child_count "$PROXY_PID") == 0)) && break; sleep 0.02; done
        t1=$(now_ns)
    fi
    # the sink logs every write at -d -d -d: check nothing was lost
    local got
    got=$(awk '/ transferred / {for (i = 1; i < NF; i++) if ($i == "transferred") s += $(i + 1)} END {printf "%d", s}' \
        "$sinklog")
    if ((rc != 0)); then
        R[$key,$data,$label]=fail
        note "recording run $data/$label/$dir: client exit $rc"
    elif [[ $got != "$bytes" ]]; then
        R[$key,$data,$label]="short ($got of $bytes bytes)"
        note "recording run $data/$label/$dir: sink received $got of $bytes bytes"
    else
        R[$key,$data,$label]=$(calc "$bytes / (($t1 - $t0) / 1000.0)")
    fi
    stop_proxy
    if [[ -n ${logdir:-} && -d $logdir ]]; then
        local sz
        sz=$(du -sb "$logdir" | cut -f1)
        R[${key}log,$data,$label]=$(calc "100.0 * $sz / $bytes")
        rm -rf "$logdir"
    fi
    log "rec $data $label $dir: ${R[$key,$data,$label]} MB/s ${R[${key}log,$data,$label]:+log ${R[${key}log,$data,$label]}% of input}"
}

time_compressor() { # DATA LABEL CMD...
    local data=$1 label=$2 bytes t0 t1
    shift 2
    bytes=$(stat -c %s "$WORK/$data")
    t0=$(now_ns)
    if timeout 300 "$@" <"$WORK/$data" >/dev/null; then
        t1=$(now_ns)
        R[rec,$data,$label]=$(calc "$bytes / (($t1 - $t0) / 1000.0)")
    else
        R[rec,$data,$label]=fail
    fi
    log "rec $data $label: ${R[rec,$data,$label]} MB/s"
}

test_rec() {
    log "== recording cost (${REC_MB} MB per data set)"
    make_data
    local data dir
    for data in text.txt random.bin; do
        budget_ok "recording/$data" || break
        for dir in up down; do
            has direct "$PEERS" && rec_run "$data" direct "$dir"
            if ((HAVE_IPPROTD)) && has ipprotd "$PEERS"; then
                rec_run "$data" unrecorded "$dir"
                rec_run "$data" plain "$dir"
                rec_run "$data" z "$dir" -z
                rec_run "$data" j "$dir" -j
            fi
        done
        time_compressor "$data" gzip6 gzip -6 -c
        time_compressor "$data" bzip2_9 bzip2 -9 -c
    done
    rm -f "$WORK/random.bin" "$WORK/text.txt"
}

# ---------------------------------------------------------------- report
versions() {
    local v=()
    command -v socat >/dev/null && v+=("socat $(socat -V 2>/dev/null | awk '/socat version/ {print $3; exit}')")
    command -v simpleproxy >/dev/null && v+=("simpleproxy $(simpleproxy -V 2>&1 | awk '{print $2; exit}')")
    command -v haproxy >/dev/null && v+=("haproxy $(haproxy -v 2>/dev/null | awk '{print $3; exit}')")
    command -v iperf3 >/dev/null && v+=("iperf3 $(iperf3 --version 2>/dev/null | awk '{print $2; exit}')")
    command -v wrk >/dev/null && v+=("wrk $(wrk -v 2>&1 | awk '{print $2; exit}')")
    command -v nginx >/dev/null && v+=("nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')")
    local IFS=,
    echo "${v[*]}"
}

report() {
    local peer data label title
    echo "# ipprotd benchmark results"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), host: $(nproc) cores, $(uname -sr)"
    echo "- load average at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- measurements took ${SECONDS} s (setup: ${SETUP_SECONDS} s); DURATION=$DURATION WRK_DURATION=$WRK_DURATION P99_CLIENTS=$P99_CLIENTS RTT_N=$RTT_N IDLE_CONNS=$IDLE_CONNS REC_MB=$REC_MB HAPROXY_NBTHREAD=$HAPROXY_NBTHREAD"
    echo "- ipprotd: $( ((HAVE_IPPROTD)) && echo "$IPPROTD" || echo "not measured ($IPPROTD missing)")"
    echo "- tools: $(versions)"
    echo
    echo "## Relay"
    echo
    echo "| peer | iperf3 1 conn Gbit/s | proxy CPU s per GB, 1 conn | iperf3 4 conns Gbit/s | conn/s (wrk -c8, close) | RTT µs mean | RTT µs p50 | RTT µs p99 | PSS KiB / idle conn | processes at $IDLE_CONNS conns |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for peer in $PEERS; do
        if ! peer_available "$peer"; then
            echo "| $peer | skipped | skipped | skipped | skipped | skipped | skipped | skipped | skipped | skipped |"
            continue
        fi
        local pss=${R[pss,$peer]:-n/a} procs=${R[procs,$peer]:-n/a} cpu=${R[cpu-bulk1,$peer]:-n/a}
        [[ $peer == direct ]] && pss="—" && procs="—" && cpu="—"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$peer" \
            "$(fmt "${R[bulk1,$peer]:-}" 2)" "$(fmt "$cpu" 3)" "$(fmt "${R[bulk4,$peer]:-}" 2)" "$(fmt "${R[cps,$peer]:-}" 0)" \
            "$(fmt "${R[rtt,$peer]:-}" 1)" "$(fmt "${R[rttp50,$peer]:-}" 1)" "$(fmt "${R[rttp99,$peer]:-}" 1)" \
            "$(fmt "$pss" 1)" "$procs"
    done
    echo
    echo "## Connections"
    echo
    echo "Short connections through each proxy (wrk, \`Connection: close\`, nginx backend). Proxy CPU is the CPU time of the proxy's whole process tree during the 8-client run (utime+stime+cutime+cstime of the parent from /proc/PID/stat, read after its children were reaped) divided by the requests wrk completed; faults likewise (minflt+cminflt). ipprotd-rec is ipprotd with \`-f DIR/prot -L -M\` (a recording connection)."
    echo
    if [[ -n ${R[floor,dynamic]:-} ]]; then
        echo "Floor of fork per connection here (contrib/bench/forkfloor.c: fork + _exit + waitpid of a C program that does nothing else, CPU per fork, faults per child): dynamic $(fmt "${R[floor,dynamic]}" 1) µs / $(fmt "${R[floorflt,dynamic]:-}" 1) faults, static $(fmt "${R[floor,static]:-}" 1) µs / $(fmt "${R[floorflt,static]:-}" 1) faults."
        echo
    fi
    echo "| peer | conn/s, 8 clients | proxy CPU µs / conn | page faults / conn | p99 ms, $P99_CLIENTS clients | conn/s, $P99_CLIENTS clients | PSS KiB / idle conn |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    local cpeers=$PEERS
    has ipprotd "$PEERS" && ! has ipprotd-rec "$PEERS" && cpeers+=" ipprotd-rec"
    for peer in $cpeers; do
        peer_available "$peer" || continue
        local pss=${R[pss,$peer]:-n/a} cpu=${R[cpu,$peer]:-n/a} flt=${R[flt,$peer]:-n/a}
        [[ $peer == direct ]] && pss="—" && cpu="—" && flt="—"
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$peer" \
            "$(fmt "${R[cps,$peer]:-}" 0)" "$(fmt "$cpu" 1)" "$(fmt "$flt" 1)" \
            "$(fmt "${R[p99,$peer]:-}" 2)" "$(fmt "${R[cps32,$peer]:-}" 0)" "$(fmt "$pss" 1)"
    done
    echo
    if [[ -n ${R[bulk1R,ipprotd]:-}${R[rec1,ipprotd]:-} ]]; then
        echo "## ipprotd, iperf3 1 conn, client→server / server→client (-R)"
        echo
        echo "| mode | → server Gbit/s | → client Gbit/s | CPU s/GB → server | CPU s/GB → client |"
        echo "|---|---:|---:|---:|---:|"
        printf '| not recorded | %s | %s | %s | %s |\n' "$(fmt "${R[bulk1,ipprotd]:-}" 2)" "$(fmt "${R[bulk1R,ipprotd]:-}" 2)" \
            "$(fmt "${R[cpu-bulk1,ipprotd]:-}" 3)" "$(fmt "${R[cpu-bulk1R,ipprotd]:-}" 3)"
        printf '| -f -L -M (plain) | %s | %s | %s | %s |\n' "$(fmt "${R[rec1,ipprotd]:-}" 2)" "$(fmt "${R[rec1R,ipprotd]:-}" 2)" \
            "$(fmt "${R[cpu-rec1,ipprotd]:-}" 3)" "$(fmt "${R[cpu-rec1R,ipprotd]:-}" 3)"
        echo
    fi
    if has rec "$TESTS"; then
        echo "## Recording (MB/s of input, 1 MB = 10^6 bytes, one connection, ${REC_MB} MB)"
        echo
        echo "| data | path | MB/s client→server | MB/s server→client | data log size, % of input |"
        echo "|---|---|---:|---:|---:|"
        for data in text.txt random.bin; do
            for label in direct unrecorded plain z j gzip6 bzip2_9; do
                case $label in
                    direct) title="direct, no proxy" ;;
                    unrecorded) title="ipprotd, not recorded" ;;
                    plain) title="ipprotd -f -L -M (plain)" ;;
                    z) title="ipprotd -f -L -M -z" ;;
                    j) title="ipprotd -f -L -M -j" ;;
                    gzip6) title="gzip -6 alone" ;;
                    bzip2_9) title="bzip2 -9 alone" ;;
                esac
                [[ -n ${R[rec,$data,$label]:-} ]] || continue
                printf '| %s | %s | %s | %s | %s |\n' "${data%%.*}" "$title" "$(fmt "${R[rec,$data,$label]}" 1)" \
                    "$(fmt "${R[recdown,$data,$label]:-—}" 1)" "$(fmt "${R[reclog,$data,$label]:-—}" 1)"
            done
        done
        echo
        echo "Text data: ${TEXT_SOURCE:-pseudo English from benchnet.py gen-text}. Random data: /dev/urandom."
        echo
    fi
    echo "## Ratios"
    echo
    echo "| ratio | value | reading |"
    echo "|---|---:|---|"
    echo "| ipprotd / haproxy throughput, 1 conn | $(ratio "${R[bulk1,ipprotd]:-}" "${R[bulk1,haproxy]:-}") | > 1: ipprotd faster |"
    echo "| ipprotd / haproxy throughput, 4 conns | $(ratio "${R[bulk4,ipprotd]:-}" "${R[bulk4,haproxy]:-}") | > 1: ipprotd faster |"
    echo "| ipprotd / socat throughput, 1 conn | $(ratio "${R[bulk1,ipprotd]:-}" "${R[bulk1,socat]:-}") | > 1: ipprotd faster |"
    echo "| ipprotd / socat throughput, 4 conns | $(ratio "${R[bulk4,ipprotd]:-}" "${R[bulk4,socat]:-}") | > 1: ipprotd faster |"
    echo "| ipprotd / haproxy-splice proxy CPU per GB, 1 conn | $(ratio "${R[cpu-bulk1,ipprotd]:-}" "${R[cpu-bulk1,haproxy-splice]:-}") | < 1: ipprotd moves a GB with less CPU |"
    echo "| ipprotd / direct throughput, 1 conn | $(ratio "${R[bulk1,ipprotd]:-}" "${R[bulk1,direct]:-}") | 1.00: the proxy costs nothing |"
    echo "| ipprotd -f -L -M / not recorded, iperf3 → server | $(ratio "${R[rec1,ipprotd]:-}" "${R[bulk1,ipprotd]:-}") | 1.00: recording is free |"
    echo "| ipprotd -f -L -M / not recorded, iperf3 → client | $(ratio "${R[rec1R,ipprotd]:-}" "${R[bulk1R,ipprotd]:-}") | 1.00: recording is free |"
    echo "| ipprotd / simpleproxy conn/s | $(ratio "${R[cps,ipprotd]:-}" "${R[cps,simpleproxy]:-}") | > 1: ipprotd accepts faster |"
    echo "| ipprotd / haproxy proxy CPU per conn | $(ratio "${R[cpu,ipprotd]:-}" "${R[cpu,haproxy]:-}") | target ≤ 2 (ipprotd $(fmt "${R[cpu,ipprotd]:-}" 1) µs vs haproxy $(fmt "${R[cpu,haproxy]:-}" 1) µs) |"
    echo "| ipprotd / haproxy conn/s, 8 clients | $(ratio "${R[cps,ipprotd]:-}" "${R[cps,haproxy]:-}") | target ≥ 0.7 |"
    echo "| ipprotd / haproxy p99, $P99_CLIENTS clients | $(ratio "${R[p99,ipprotd]:-}" "${R[p99,haproxy]:-}") | target ≤ 2 |"
    echo "| ipprotd PSS per idle conn, KiB | $(fmt "${R[pss,ipprotd]:-}" 1) | target ≤ 32 (recording: $(fmt "${R[pss,ipprotd-rec]:-}" 1)) |"
    echo "| ipprotd / simpleproxy PSS per idle conn | $(ratio "${R[pss,ipprotd]:-}" "${R[pss,simpleproxy]:-}") | < 1: ipprotd leaner (ipprotd $(fmt "${R[pss,ipprotd]:-}" 1) KiB vs simpleproxy $(fmt "${R[pss,simpleproxy]:-}" 1) KiB) |"
    echo "| plain recording / unrecorded, text | $(ratio "${R[rec,text.txt,plain]:-}" "${R[rec,text.txt,unrecorded]:-}") | 1.00: recording is free |"
    echo "| plain recording / unrecorded, random | $(ratio "${R[rec,random.bin,plain]:-}" "${R[rec,random.bin,unrecorded]:-}") | 1.00: recording is free |"
    echo "| plain recording / unrecorded, text, server→client | $(ratio "${R[recdown,text.txt,plain]:-}" "${R[recdown,text.txt,unrecorded]:-}") | 1.00: recording is free |"
    echo "| plain recording / unrecorded, random, server→client | $(ratio "${R[recdown,random.bin,plain]:-}" "${R[recdown,random.bin,unrecorded]:-}") | 1.00: recording is free |"
    echo "| -z / gzip -6 alone, text | $(ratio "${R[rec,text.txt,z]:-}" "${R[rec,text.txt,gzip6]:-}") | ~1: compression is the only cost |"
    echo "| -j / bzip2 -9 alone, text | $(ratio "${R[rec,text.txt,j]:-}" "${R[rec,text.txt,bzip2_9]:-}") | ~1: compression is the only cost |"
    echo
    if ((${#NOTES[@]})); then
        echo "## Notes"
        echo
        local n
        for n in "${NOTES[@]}"; do echo "- $n"; done
        echo
    fi
}

# ---------------------------------------------------------------- main
main() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/ipprotd-bench.XXXXXX") || exit 1
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    install_deps
    local c
    for c in python3 socat; do
        command -v "$c" >/dev/null || { log "required tool $c missing"; exit 1; }
    done
    for c in iperf3 wrk nginx simpleproxy haproxy rinetd gzip bzip2; do
        command -v "$c" >/dev/null || note "$c not available: its measurements are skipped"
    done
    setup_ipprotd
    # installs and a cargo build are not part of the measured run
    SETUP_SECONDS=$SECONDS
    SECONDS=0
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
    log "scratch dir $WORK; peers: $PEERS; tests: $TESTS"

    start_server ECHO echo python3 "$HELPER" echo-server PORT --lifetime 900 || exit 1
    has bulk "$TESTS" && command -v iperf3 >/dev/null && test_bulk
    has cps "$TESTS" && test_cps
    has p99 "$TESTS" && test_p99
    has rtt "$TESTS" && test_rtt
    has pss "$TESTS" && test_pss
    stop_pid "$ECHO"
    has rec "$TESTS" && budget_ok recording && test_rec

    local md
    md=$(report)
    printf '%s\n' "$md" >"$OUT"
    printf '\n%s\n' "$md"
    log "written to $OUT; measurements ${SECONDS} s, setup ${SETUP_SECONDS} s"
}

main "$@"
