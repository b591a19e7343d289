#!/usr/bin/env bash
# TLS termination cost, one run, loopback only: bulk throughput of ONE
# connection and the proxy's CPU time per GB, for
#   direct      TLS client -> TLS server (no proxy; the reference)
#   plain       plain client -> ipprotd -> plain server
#   ipprotd     TLS client -> ipprotd --tls-cert (terminates, re-encrypts,
#               --tls-upstream insecure) -> TLS server
#   haproxy     TLS client -> haproxy (bind ... ssl crt, server ... ssl
#               verify none: terminates and re-encrypts) -> TLS server
# The client and the server are Python's ssl module (OpenSSL), tlsbulk
# below: the client sends MB megabytes (10^6) in 256 KiB writes after an
# 8-byte length, the server reads them and answers one byte; the time is from connect to
# that byte. Both legs negotiate what client and server prefer (TLS 1.3,
# AES-256-GCM here). ipprotd records nothing (no -f), like haproxy.
# CPU is utime+stime of the proxy from /proc (ipprotd: the parent's
# cutime+cstime, which hold the reaped connection child; haproxy: its one
# process, all threads), in seconds per GB moved. The machine may be
# loaded: the CPU figures are the fairer comparison, wall time is shown too.
#
# Knobs: IPPROTD [target/release/ipprotd], MB [1000], ROUNDS [3] (each
# round runs every setup once, alternating; the best wall time and the
# median CPU per setup are reported), HAPROXY [haproxy from PATH].
# Every process it starts is ended by PID; the work dir is removed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
IPPROTD=${IPPROTD:-$HERE/../../target/release/ipprotd}
MB=${MB:-1000}
ROUNDS=${ROUNDS:-3}
HAPROXY=${HAPROXY:-haproxy}
WORK=$(mktemp -d /tmp/ipprotd-tlsbench.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for t in openssl python3 timeout "$HAPROXY"; do
    command -v "$t" >/dev/null || { echo "tls.sh: $t is missing" >&2; exit 1; }
done
[[ -x $IPPROTD ]] || { echo "tls.sh: no ipprotd at $IPPROTD (cargo build --release)" >&2; exit 1; }
TCK=$(getconf CLK_TCK)

# a test CA, the server's and the proxy's certificates (SAN 127.0.0.1)
cd "$WORK" || exit 1
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext.cnf
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca 2>/dev/null
for n in server proxy; do
    openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj /CN=localhost 2>/dev/null
    openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem -days 2 -extfile ext.cnf 2>/dev/null
done
cat proxy.pem proxy.key >proxy-haproxy.pem

cat >tlsbulk.py <<'EOF'
import socket, ssl, sys, time
CHUNK = 256 * 1024
def serve(port_file, tls):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0)); ls.listen(16)
    open(port_file, "w").write(str(ls.getsockname()[1]))
    ctx = None
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain("server.pem", "server.key")
    while True:
        c, _ = ls.accept()
        try:  # a readiness probe (no TLS, no data) must not end the server
            if ctx: c = ctx.wrap_socket(c, server_side=True)
            head = b""
            while len(head) < 8:
                b = c.recv(8 - len(head))
                if not b: raise OSError("short")
                head += b
            left = int.from_bytes(head, "big")
            while left > 0:
                b = c.recv(min(CHUNK, left))
                if not b: raise OSError("short")
                left -= len(b)
            c.sendall(b"k")
        except (OSError, ssl.SSLError):
            pass
        c.close()
def client(port, tls, mb):
    s = socket.create_connection(("127.0.0.1", port))
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.load_verify_locations("ca.pem")
        t0 = time.perf_counter(); s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    else:
        t0 = time.perf_counter()
    buf = b"x" * CHUNK; left = mb * 1000000
    s.sendall(left.to_bytes(8, "big"))
    while left > 0:
        k = min(left, CHUNK); s.sendall(buf[:k]); left -= k
    r = s.recv(1)
    t = time.perf_counter() - t0
    assert r == b"k", r
    print("%.4f" % t)
if sys.argv[1] == "serve": serve(sys.argv[2], sys.argv[3] == "tls")
else: client(int(sys.argv[2]), sys.argv[3] == "tls", int(sys.argv[4]))
EOF

start_server() { # tls|plain: the port lands in port.tls / port.plain
    rm -f "port.$1"
    python3 tlsbulk.py serve "port.$1" "$1" </dev/null >/dev/null 2>"server.$1.err" &
    PIDS+=($!)
    for _ in $(seq 200); do [[ -s port.$1 ]] && return 0; sleep 0.05; done
    echo "tls.sh: the $1 server did not start: $(cat "server.$1.err")" >&2
    exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
cpu_ipprotd() { awk '{print $14+$15+$16+$17}' /proc/$1/stat; }  # parent + reaped children
cpu_haproxy() { awk '{print $14+$15}' /proc/$1/stat; }

start_server tls
start_server plain
TLS_PORT=$(cat port.tls)
PLAIN_PORT=$(cat port.plain)

# proxies, each started once
P_PLAIN=$(free_port)
"$IPPROTD" -p "$P_PLAIN@127.0.0.1" -P "$PLAIN_PORT@127.0.0.1" -b 262144 </dev/null 2>ipprotd-plain.err &
IPP_PLAIN=$!; PIDS+=($IPP_PLAIN)
P_TLS=$(free_port)
"$IPPROTD" -p "$P_TLS@127.0.0.1" -P "$TLS_PORT@127.0.0.1" -b 262144 \
    --tls-cert proxy.pem --tls-key proxy.key --tls-upstream insecure </dev/null 2>ipprotd-tls.err &
IPP_TLS=$!; PIDS+=($IPP_TLS)
P_HA=$(free_port)
cat >haproxy.cfg <<EOF
global
    maxconn 100
    nbthread 1
defaults
    mode tcp
    timeout connect 10s
    timeout client 60s
    timeout server 60s
frontend f
    bind 127.0.0.1:$P_HA ssl crt $WORK/proxy-haproxy.pem
    default_backend b
backend b
    server s 127.0.0.1:$TLS_PORT ssl verify none
EOF
"$HAPROXY" -q -f haproxy.cfg -db </dev/null >/dev/null 2>haproxy.err &
HA=$!; PIDS+=($HA)
wait_port "$P_PLAIN" && wait_port "$P_TLS" && wait_port "$P_HA" || { echo "tls.sh: a proxy did not start" >&2; exit 1; }

declare -A WALL CPU
run_one() { # name port tls|plain cpufn pid
    local name=$1 port=$2 mode=$3 fn=$4 pid=$5 c0 c1 t
    c0=0; [[ -n $pid ]] && c0=$($fn "$pid")
    t=$(timeout 600 python3 tlsbulk.py client "$port" "$mode" "$MB") || { echo "tls.sh: $name failed; proxy logs:" >&2; tail -5 ipprotd-*.err haproxy.err >&2; exit 1; }
    sleep 0.3  # the ipprotd child is reaped, its CPU lands in cutime
    c1=0; [[ -n $pid ]] && c1=$($fn "$pid")
    WALL[$name]+="$t "
    CPU[$name]+="$(awk -v a="$c0" -v b="$c1" -v h="$TCK" 'BEGIN{printf "%.3f", (b-a)/h}') "
}
for r in $(seq "$ROUNDS"); do
    run_one direct "$TLS_PORT" tls "" ""
    run_one plain "$P_PLAIN" plain cpu_ipprotd "$IPP_PLAIN"
    run_one ipprotd "$P_TLS" tls cpu_ipprotd "$IPP_TLS"
    run_one haproxy "$P_HA" tls cpu_haproxy "$HA"
done

best() { tr ' ' '\n' | grep . | sort -g | head -1; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
GB=$(awk -v m="$MB" 'BEGIN{print m/1000}')
echo "# TLS termination benchmark ($(date -u +%F\ %TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "One connection, $MB MB client -> server, $ROUNDS rounds; best wall, median proxy CPU."
echo
echo "| setup | wall s | MB/s | proxy CPU s | proxy CPU s/GB |"
echo "|---|---|---|---|---|"
for name in direct plain ipprotd haproxy; do
    w=$(echo "${WALL[$name]}" | best)
    c=$(echo "${CPU[$name]}" | median)
    awk -v n="$name" -v w="$w" -v c="$c" -v mb="$MB" -v gb="$GB" \
        'BEGIN{printf "| %s | %.2f | %.0f | %s | %s |\n", n, w, mb/w, (n=="direct")?"-":sprintf("%.2f",c), (n=="direct")?"-":sprintf("%.2f",c/gb)}'
done
echo
wi=$(echo "${WALL[ipprotd]}" | best); wh=$(echo "${WALL[haproxy]}" | best)
ci=$(echo "${CPU[ipprotd]}" | median); ch=$(echo "${CPU[haproxy]}" | median)
awk -v wi="$wi" -v wh="$wh" -v ci="$ci" -v ch="$ch" \
    'BEGIN{printf "ipprotd / haproxy throughput: %.2fx; CPU per GB: %.2fx\n", wh/wi, (ch>0)?ci/ch:0}'
echo "all wall times: $(for n in direct plain ipprotd haproxy; do printf '%s=[%s] ' $n "${WALL[$n]}"; done)"
echo "all CPU times: $(for n in plain ipprotd haproxy; do printf '%s=[%s] ' $n "${CPU[$n]}"; done)"
