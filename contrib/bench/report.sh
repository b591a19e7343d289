#!/usr/bin/env bash
# ipprotreport benchmark: N connection-log entries (default format) joined
# with N FlexNet debug-log lines (N/2 checkouts, each OUT and its IN), for
# N = 100k, 300k and 1M: wall time, CPU time and peak RSS of one report
# (`/usr/bin/time -v`), text output to /dev/null. Targets at 1M: under
# 10 s and under 500 MB. Data generated here, deterministic (seeded), in
# UTC; loopback addresses only appear as text. Usage:
#   contrib/bench/report.sh [N ...]        (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100000 300000 1000000)
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (Debian package time)"; exit 1; }
cargo build --release --bin ipprotreport >/dev/null 2>&1 || cargo build --release --bin ipprotreport
bin=target/release/ipprotreport
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gen() { # N DIR
    python3 - "$1" "$2" <<'PY'
import random, sys, time
n, d = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(42)
users = [f"user{i:04d}" for i in range(2000)]
hosts = [f"ws{i:04d}" for i in range(1500)]
feats = ["MATLAB", "SIMULINK", "Optimization_Toolbox", "Signal_Toolbox", "Statistics_Toolbox"]
t0 = 1_793_491_200  # 2026-11-01 00:00:00 UTC
span = 30 * 86400
def iso(t):
    return time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime(t))
events = []
with open(f"{d}/conn.log", "w") as f:
    for i in range(n):
        u = rnd.randrange(len(users)); h = (u * 7 + rnd.randrange(3)) % len(hosts)
        s = t0 + rnd.randrange(span); dur = rnd.randrange(30, 4 * 3600)
        ip = f"10.{(h >> 8) & 255}.{h & 255}.{1 + u % 250}"
        status = "ok" if rnd.random() > 0.02 else "refused"
        f.write(f"{iso(s)}|{iso(s + dur)}|{dur}|{ip}|{40000 + i % 20000}|147|53|{status}|flexlm|{users[u]}|{hosts[h]}|/dev/pts/{i % 90}|{10000 + i % 50000}|-\n")
        if i % 2 == 0 and status == "ok":
            o = s + 1 + rnd.randrange(5); c = min(s + dur - 1, o + rnd.randrange(60, 3 * 3600))
            feat = feats[rnd.randrange(len(feats))]
            events.append((o, 0, f'OUT: "{feat}" {users[u]}@{hosts[h]}  '))
            events.append((max(c, o), 1, f'IN: "{feat}" {users[u]}@{hosts[h]}  '))
# pad to n debug-log lines with failed checkouts (DENIED), as busy servers log
while len(events) < n:
    u = rnd.randrange(len(users)); h = (u * 7) % len(hosts)
    events.append((t0 + rnd.randrange(span), 2, f'DENIED: "MATLAB" {users[u]}@{hosts[h]}  (Licensed number of users already reached. (-4,342))'))
events.sort()
with open(f"{d}/lmgrd.log", "w") as f:
    day = None
    for t, _, msg in events[:n]:
        g = time.gmtime(t)
        if g.tm_yday != day:
            day = g.tm_yday
            f.write(f" 0:00:00 (lmgrd) TIMESTAMP {g.tm_mon}/{g.tm_mday}/{g.tm_year}\n")
        f.write(f"{g.tm_hour:2d}:{g.tm_min:02d}:{g.tm_sec:02d} (MLM) {msg}\n")
PY
}

echo "| entries | debug-log lines | wall s | user s | sys s | max RSS MB |"
echo "|---:|---:|---:|---:|---:|---:|"
for n in "${sizes[@]}"; do
    d="$work/$n"; mkdir -p "$d"
    gen "$n" "$d"
    lines=$(wc -l < "$d/lmgrd.log")
    TZ=UTC /usr/bin/time -v -o "$d/time" "$bin" --flexlm-log "$d/lmgrd.log" --log-tz UTC \
        -o /dev/null "$d/conn.log" 2> "$d/stderr" || { cat "$d/stderr"; exit 1; }
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$d/time")
    user=$(awk -F': ' '/User time/ {print $2}' "$d/time")
    sys=$(awk -F': ' '/System time/ {print $2}' "$d/time")
    rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$d/time")
    printf "| %s | %s | %s | %s | %s | %s |\n" "$n" "$lines" "$wall" "$user" "$sys" "$rss"
    rm -rf "$d"
done
