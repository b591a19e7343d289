#!/usr/bin/env bash
# Benchmark of the statement audit (ipprotd --statement-log, ipprotcat
# --statements) against a real PostgreSQL server, loopback only. In one
# run, ROUNDS rounds each of
#   pgbench -C (a new connection per transaction, simple protocol) and
#   pgbench -M prepared (one connection per client, extended protocol)
# through an ipprotd without and one with --statement-log, taking turns
# (ABAB...: load noise on a shared machine hits both alike): transactions
# per second, their ratio, the CPU time of the ipprotd processes (parent
# and reaped children, from /proc) per statement logged, and what the
# statement log adds per statement. Then `ipprotcat --statements` and
# `--statements --json` on statement-dense plain recordings (-L -M) of
# pgbench -M simple, extended and prepared, on a MariaDB one (the mariadb
# Python connector, text protocol; skipped with a note where MariaDB or
# the connector is missing), and `--json` on a bulk one (one SELECT of
# large rows): MB/s (wall clock and CPU) and records/s.
#
# Usage: audit.sh [all|log|reader]   (default all)
#   log     only the pgbench runs with and without --statement-log
#   reader  only the reader: records one statement-dense pgbench session
#           per protocol mode (-M simple, extended, prepared; -c 1) through
#           ipprotd -f -L -M, then times `ipprotcat --statements` and
#           `--statements --json` on each (MB/s of input, records/s), and
#           the bulk recording. KEEP=DIR keeps the recordings in DIR.
#
# Every process it starts is tracked by PID and ended on exit; the
# cluster lives in a temp dir and is removed.
#
# Environment knobs (defaults in brackets):
#   IPPROTD, IPPROTCAT  binaries [target/release/ from this repo; built if missing]
#   DURATION     seconds per pgbench run [10]
#   ROUNDS       rounds (plain, then audited) per workload [3]
#   CLIENTS      pgbench clients (-c) [4], threads (-j) [2]
#   REC_SECONDS  seconds of pgbench -M extended recorded for the reader [15]
#   BULK_MB      MB of rows in the bulk recording [200]
#   KEEP         directory to copy the reader's recordings to [none]
#   READ_RUNS    runs of ipprotcat per recording and form; the fastest counts [5]
#   OUT          markdown report [audit-latest.md beside this script]
set -uo pipefail
MODE=${1:-all}
case $MODE in all|log|reader) ;; *) echo "usage: $0 [all|log|reader]" >&2; exit 2 ;; esac

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
IPPROTD=${IPPROTD:-$REPO_ROOT/target/release/ipprotd}
IPPROTCAT=${IPPROTCAT:-$REPO_ROOT/target/release/ipprotcat}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-4}
THREADS=${THREADS:-2}
REC_SECONDS=${REC_SECONDS:-15}
BULK_MB=${BULK_MB:-200}
OUT=${OUT:-$SCRIPT_DIR/audit-latest.md}
KEEP=${KEEP:-}
READ_RUNS=${READ_RUNS:-5}
export LC_ALL=C

PIDS=()
WORK=""
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
calc() { awk "BEGIN{printf \"%.${2:-2}f\", $1}"; }

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [[ -n $WORK && -d $WORK/data ]]; then
        run_pg pg_ctl stop -m immediate -D "$WORK/data" >/dev/null 2>&1
    fi
    [[ -n $WORK ]] && rm -rf "$WORK"
}
trap cleanup EXIT

if [[ ! -x $IPPROTD || ! -x $IPPROTCAT ]]; then
    log "building release binaries"
    (cd "$REPO_ROOT" && cargo build --release -q) || die "cargo build failed"
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $PGBIN/postgres ]] || die "no PostgreSQL server (apt-get install postgresql)"
PGBENCH=$(command -v pgbench || echo "$PGBIN/pgbench")
PSQL=$(command -v psql || echo "$PGBIN/psql")
[[ -x $PGBENCH && -x $PSQL ]] || die "pgbench/psql missing (apt-get install postgresql-contrib postgresql-client)"

WORK=$(mktemp -d /tmp/ipprotd-audit-bench.XXXXXX)
chmod 755 "$WORK"
RUN_AS=()
if [[ $(id -u) == 0 ]]; then
    id -u postgres >/dev/null 2>&1 || die "running as root needs the postgres user"
    chown postgres: "$WORK"
    RUN_AS=(runuser -u postgres --)
fi
run_pg() { local t=$1; shift; "${RUN_AS[@]}" "$PGBIN/$t" "$@"; }

# a free loopback port: bind :0, read it, close
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

PGPORT=$(free_port)
log "PostgreSQL on 127.0.0.1:$PGPORT in $WORK"
run_pg initdb -U postgres -A trust -E UTF8 --no-sync -D "$WORK/data" >/dev/null || die "initdb failed"
run_pg pg_ctl start -W -D "$WORK/data" -l "$WORK/server.log" \
    -o "-h 127.0.0.1 -p $PGPORT -k $WORK -c fsync=off -c synchronous_commit=off -c max_connections=100" >/dev/null \
    || die "pg_ctl start failed"
for _ in $(seq 100); do run_pg pg_isready -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 0.1; done
"$PGBENCH" -i -s 10 -q "host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres" >/dev/null 2>&1 || die "pgbench -i failed"

# start_proxy NAME ARGS...: ipprotd -p 0 in front of the server; sets
# PORT_<NAME> and PID_<NAME>
start_proxy() {
    local name=$1; shift
    "$IPPROTD" -p 0@127.0.0.1 -P "${DEST_PORT:-$PGPORT}@127.0.0.1" --verbose "$@" 2>"$WORK/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    local port=""
    for _ in $(seq 200); do
        port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/$name.err" | head -1)
        [[ -n $port ]] && break
        sleep 0.05
    done
    [[ -n $port ]] || die "ipprotd ($name) did not start: $(cat "$WORK/$name.err")"
    printf -v "PORT_$name" %s "$port"
    printf -v "PID_$name" %s "$pid"
}

# CPU ticks of a process and its reaped children (utime stime cutime cstime)
ticks() { awk '{print $14+$15+$16+$17}' "/proc/$1/stat"; }
# wait until PID has no children left (all connections closed and reaped)
wait_children() { for _ in $(seq 400); do [[ -z $(pgrep -P "$1") ]] && return; sleep 0.05; done; }
HZ=$(getconf CLK_TCK)

declare -A TPS=() CPU=() STMTS=()
run_one() { # WORKLOAD PROXY
    local w=$1 p=$2 port pid args
    port=PORT_$p; pid=PID_$p
    case $w in
        C) args=(-n -C -c "$CLIENTS" -j "$THREADS" -T "$DURATION") ;;
        prepared) args=(-n -M prepared -c "$CLIENTS" -j "$THREADS" -T "$DURATION") ;;
    esac
    local before lines_before out tps after lines_after
    before=$(ticks "${!pid}")
    lines_before=$(wc -l < "$WORK/statements.log")
    out=$("$PGBENCH" "${args[@]}" "host=127.0.0.1 port=${!port} user=postgres dbname=postgres sslmode=disable" 2>&1)
    wait_children "${!pid}"
    after=$(ticks "${!pid}")
    lines_after=$(wc -l < "$WORK/statements.log")
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
    [[ -n $tps ]] || die "pgbench $w via $p: $out"
    log "pgbench $w via $p: tps $tps, cpu $((after - before)) ticks, records $((lines_after - lines_before))"
    TPS[$w,$p]=$(calc "${TPS[$w,$p]:-0} + $tps")
    CPU[$w,$p]=$(( ${CPU[$w,$p]:-0} + after - before ))
    STMTS[$w,$p]=$(( ${STMTS[$w,$p]:-0} + lines_after - lines_before ))
}

if [[ $MODE != reader ]]; then
    start_proxy plain
    start_proxy audit --statement-log "$WORK/statements.log"
    touch "$WORK/statements.log"
    # ABAB...: the two proxies take turns, so a load change on the shared
    # machine hits both alike
    for w in C prepared; do
        for r in $(seq "$ROUNDS"); do
            for p in plain audit; do run_one "$w" "$p"; done
        done
    done
fi

# read_rate FILE ARGS... -> "MB/s records seconds MB records/s cpu_seconds cpu_MB/s"
# (the output goes to /dev/null; records counted in a run of their own)
read_rate() {
    local f=$1 n t real user sys secs cpu size c
    shift
    n=$("$IPPROTCAT" "$@" "$f" | wc -l)  # also warms the page cache
    # the fastest of READ_RUNS runs: on a shared machine the others were
    # slowed down by someone else
    secs="" cpu=""
    for _ in $(seq "$READ_RUNS"); do
        t=$( { TIMEFORMAT='%R %U %S'; time "$IPPROTCAT" "$@" "$f" > /dev/null; } 2>&1 )
        read -r real user sys <<<"$t"
        if [[ -z $secs ]] || awk "BEGIN{exit !($real < $secs)}"; then secs=$real; fi
        c=$(calc "$user + $sys" 3)
        if [[ -z $cpu ]] || awk "BEGIN{exit !($c < $cpu)}"; then cpu=$c; fi
    done
    size=$(stat -c %s "$f")
    echo "$(calc "$size / 1e6 / $secs" 1) $n $secs $(calc "$size / 1e6" 1) $(calc "$n / $secs" 0) $cpu $(calc "$size / 1e6 / ($cpu + 0.0005)" 1)"
}

# mysql_reader: the reader on a statement-dense MariaDB recording (the
# text protocol, as the mariadb Python connector sends it: an UPDATE, a
# SELECT and an INSERT per round, a COMMIT per 100), when MariaDB and the
# connector are installed (apt-get install mariadb-server python3-mariadb
# or pip install mariadb); otherwise a note row.
mysql_reader() {
    local mdb=$WORK/mdb mport i
    if [[ ! -x /usr/sbin/mariadbd ]] || ! command -v mariadb-install-db >/dev/null \
        || ! python3 -c 'import mariadb' 2>/dev/null; then
        READER_ROWS+=("| MariaDB: skipped (mariadbd, mariadb-install-db or the Python mariadb connector missing) | | | | | | | | |")
        return
    fi
    mkdir -p "$mdb/tmp"
    mariadb-install-db --no-defaults --datadir="$mdb/data" --tmpdir="$mdb/tmp" \
        --auth-root-authentication-method=normal --skip-test-db --user="$(id -un)" >"$mdb/install.log" 2>&1 \
        || die "mariadb-install-db failed: $(tail -3 "$mdb/install.log")"
    mport=$(free_port)
    /usr/sbin/mariadbd --no-defaults --datadir="$mdb/data" --tmpdir="$mdb/tmp" --socket="$mdb/sock" \
        --pid-file="$mdb/pid" --log-error="$mdb/err.log" --port="$mport" --bind-address=127.0.0.1 \
        --skip-name-resolve --innodb-buffer-pool-size=32M --innodb-flush-log-at-trx-commit=0 \
        --user="$(id -un)" </dev/null >/dev/null 2>&1 &
    PIDS+=("$!")
    for i in $(seq 300); do grep -q "ready for connections" "$mdb/err.log" 2>/dev/null && break; sleep 0.1; done
    grep -q "ready for connections" "$mdb/err.log" 2>/dev/null || die "mariadbd did not start: $(tail -3 "$mdb/err.log")"
    mariadb -S "$mdb/sock" -uroot -e "ALTER USER root@'127.0.0.1' IDENTIFIED BY 'bench';
        CREATE DATABASE bench; USE bench; CREATE TABLE accounts (id INT PRIMARY KEY, balance INT);
        CREATE TABLE history (id INT, delta INT, note VARCHAR(40));
        INSERT INTO accounts SELECT seq, 0 FROM seq_1_to_1000;" || die "MariaDB set-up failed"
    DEST_PORT=$mport start_proxy mrec -L -M -f "$WORK/mprot"
    log "recording the mariadb connector (text protocol) for ${REC_SECONDS}s"
    python3 - "$PORT_mrec" "$REC_SECONDS" <<'PY' || die "MariaDB load failed"
import sys, time, mariadb
c = mariadb.connect(host="127.0.0.1", port=int(sys.argv[1]), user="root", password="bench", database="bench")
cur = c.cursor()
end, n = time.time() + float(sys.argv[2]), 0
while time.time() < end:
    for i in range(100):
        k = (n * 7 + i) % 1000 + 1
        cur.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (i - 50, k))
        cur.execute("SELECT balance FROM accounts WHERE id = ?", (k,))
        cur.fetchall()
        cur.execute("INSERT INTO history (id, delta, note) VALUES (?, ?, ?)", (k, i - 50, "txn %d" % n))
    c.commit()
    n += 1
c.close()
PY
    wait_children "$PID_mrec"
    f=$(ls -S "$WORK"/mprot_* | head -1)
    mv "$f" "$WORK/dense-mysql"
    [[ -n $KEEP ]] && cp "$WORK/dense-mysql" "$KEEP/"
    for fmt in text json; do
        args=(--statements); [[ $fmt == json ]] && args+=(--json)
        read -r mbs n s mb rps cpu cmbs <<<"$(read_rate "$WORK/dense-mysql" "${args[@]}")"
        log "ipprotcat ${args[*]} dense-mysql: $mb MB, $n records, $s s ($cpu s CPU), $mbs MB/s ($cmbs MB/s of CPU), $rps records/s"
        READER_ROWS+=("| MariaDB $(/usr/sbin/mariadbd --version | awk '{print $3}' | cut -d- -f1), mariadb connector (text protocol) -c 1, ${REC_SECONDS}s | ${args[*]} | $mb | $n | $s | $cpu | $mbs | $cmbs | $rps |")
    done
}

READER_ROWS=()
if [[ $MODE != log ]]; then
    start_proxy rec -L -M -f "$WORK/prot"
    for m in simple extended prepared; do
        log "recording pgbench -M $m -c 1 for ${REC_SECONDS}s"
        rm -f "$WORK"/prot_*
        "$PGBENCH" -n -M "$m" -c 1 -T "$REC_SECONDS" "host=127.0.0.1 port=$PORT_rec user=postgres dbname=postgres sslmode=disable" >/dev/null 2>&1
        wait_children "$PID_rec"
        f=$(ls -S "$WORK"/prot_* | head -1)  # pgbench's own first connection is small
        mv "$f" "$WORK/dense-$m"
        [[ -n $KEEP ]] && mkdir -p "$KEEP" && cp "$WORK/dense-$m" "$KEEP/"
        for fmt in text json; do
            args=(--statements); [[ $fmt == json ]] && args+=(--json)
            read -r mbs n s mb rps cpu cmbs <<<"$(read_rate "$WORK/dense-$m" "${args[@]}")"
            log "ipprotcat ${args[*]} dense-$m: $mb MB, $n records, $s s ($cpu s CPU), $mbs MB/s ($cmbs MB/s of CPU), $rps records/s"
            READER_ROWS+=("| pgbench -M $m -c 1, ${REC_SECONDS}s | ${args[*]} | $mb | $n | $s | $cpu | $mbs | $cmbs | $rps |")
        done
    done
    rm -f "$WORK"/prot_*
    log "recording one SELECT of ${BULK_MB} MB of rows"
    ROWS=$(( BULK_MB * 1000 ))
    "$PSQL" -X -q -o /dev/null "host=127.0.0.1 port=$PORT_rec user=postgres dbname=postgres sslmode=disable" \
        -c "SELECT g, repeat('x', 990) FROM generate_series(1, $ROWS) g" >/dev/null 2>&1
    wait_children "$PID_rec"
    BULK=$(ls -t "$WORK"/prot_* | head -1)
    read -r mbs n s mb rps cpu cmbs <<<"$(read_rate "$BULK" --statements --json)"
    READER_ROWS+=("| one SELECT of ${BULK_MB} MB of rows | --statements --json | $mb | $n | $s | $cpu | $mbs | $cmbs | $rps |")
    mysql_reader
fi

{
    echo "# Statement audit benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    if [[ $MODE != reader ]]; then
        echo "PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}'), pgbench -s 10, -c $CLIENTS -j $THREADS, ${DURATION}s per run, $ROUNDS rounds per workload (alternating plain, audit), loopback."
        echo "CPU = utime+stime of the ipprotd parent and its reaped children (/proc), per statement record."
        echo
        echo "| workload | tps without | tps with --statement-log | ratio | records | CPU µs/statement without | CPU µs/statement with | added |"
        echo "|---|---|---|---|---|---|---|---|"
        for w in C prepared; do
            tp=$(calc "${TPS[$w,plain]} / $ROUNDS" 1); ta=$(calc "${TPS[$w,audit]} / $ROUNDS" 1)
            n=${STMTS[$w,audit]}
            per=$(calc "${CPU[$w,audit]} * 1e6 / $HZ / $n" 1)
            # the plain proxy relayed the same kind of statements: scale the
            # audited run's count to its transactions
            plain_per=$(calc "${CPU[$w,plain]} * 1e6 / $HZ / ($n * ${TPS[$w,plain]} / ${TPS[$w,audit]})" 1)
            added=$(calc "$per - $plain_per" 1)
            label=$([[ $w == C ]] && echo "pgbench -C" || echo "pgbench -M prepared")
            echo "| $label | $tp | $ta | $(calc "$ta / $tp" 3) | $n | $plain_per | $per | $added |"
        done
        echo
    fi
    if [[ $MODE != log ]]; then
        echo "ipprotcat on plain recordings (-L -M), page cache warm, output to /dev/null, the fastest of $READ_RUNS runs;"
        echo "MB/s of input per wall-clock second and per CPU second (user+sys: on a loaded machine the wall clock waits for the CPU):"
        echo
        echo "| recording | options | size MB | records | seconds | CPU seconds | MB/s | MB/s of CPU | records/s |"
        echo "|---|---|---|---|---|---|---|---|---|"
        printf '%s\n' "${READER_ROWS[@]}"
    fi
} | tee "$OUT"
