#!/usr/bin/env python3
"""Small loopback-only helpers for contrib/bench/run.sh (stdlib only).

Subcommands:
  echo-server PORT [--lifetime S]      echo everything back; exits after S seconds
  rtt PORT [--n N --size B --warmup W] ping-pong N round trips of B bytes on one
                                       connection; prints "mean_us p50_us p99_us"
  hold PORT --n N [--release FILE --max-hold S]
                                       open N connections one by one, echo a byte on each,
                                       print "READY N", keep them idle until FILE
                                       exists (at most S seconds), then close
  iperf-gbps FILE [--bytes]            print received Gbit/s (or bytes) from iperf3 --json
  gen-text OUT BYTES                   write BYTES of pseudo English text
Every address is 127.0.0.1; every loop is bounded in count and time.
"""
import argparse
import json
import os
import random
import selectors
import socket
import sys
import time

HOST = "127.0.0.1"


def echo_server(a):
    sel = selectors.DefaultSelector()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, a.port))
    ls.listen(1024)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ)
    deadline = time.monotonic() + a.lifetime
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            if s is ls:
                for _ in range(64):
                    try:
                        c, _addr = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ)
                continue
            try:
                d = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            if not d:
                sel.unregister(s)
                s.close()
                continue
            try:
                s.settimeout(5.0)
                s.sendall(d)
                s.setblocking(False)
            except OSError:
                sel.unregister(s)
                s.close()


def recv_exact(s, view, size):
    got = 0
    while got < size:
        k = s.recv_into(view[got:], size - got)
        if not k:
            raise ConnectionError("connection closed by peer")
        got += k


def rtt(a):
    s = socket.create_connection((HOST, a.port), timeout=5.0)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = b"x" * a.size
    buf = bytearray(a.size)
    view = memoryview(buf)
    for _ in range(a.warmup):
        s.sendall(msg)
        recv_exact(s, view, a.size)
    clock = time.perf_counter_ns
    samples = []
    t0 = clock()
    for _ in range(a.n):
        t = clock()
        s.sendall(msg)
        recv_exact(s, view, a.size)
        samples.append(clock() - t)
    total = clock() - t0
    s.close()
    samples.sort()
    mean = total / a.n / 1000.0
    p50 = samples[len(samples) // 2] / 1000.0
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1000.0
    print(f"{mean:.1f} {p50:.1f} {p99:.1f}")


def hold(a):
    socks = []
    deadline = time.monotonic() + a.max_hold
    try:
        # One at a time, each confirmed by an echo before the next connect:
        # socat and simpleproxy listen with a backlog of 5, and a burst of
        # connects overflows it (dropped SYN, 1 s retransmit).
        for i in range(a.n):
            s = socket.create_connection((HOST, a.port), timeout=5.0)
            socks.append(s)
            s.sendall(b"p")
            if s.recv(1) != b"p":
                raise ConnectionError("no echo")
    except OSError as e:
        print(f"FAIL after {len(socks)} connections: {e}", flush=True)
        return 1
    print(f"READY {len(socks)}", flush=True)
    if a.release:
        while time.monotonic() < deadline and not os.path.exists(a.release):
            time.sleep(0.05)
    for s in socks:
        s.close()
    return 0


def iperf_gbps(a):
    try:
        with open(a.file) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        print(f"ERR unparsable iperf3 output ({e.__class__.__name__})")
        return 1
    if d.get("error"):
        print("ERR " + str(d["error"]).replace("\n", " "))
        return 1
    try:
        bps = d["end"]["sum_received"]["bits_per_second"]
        nbytes = d["end"]["sum_received"]["bytes"]
    except KeyError:
        print("ERR no end.sum_received in iperf3 output")
        return 1
    print(nbytes if a.bytes else f"{bps / 1e9:.3f}")
    return 0


WORDS = (
    "the of and to in is that for it as with was on be by this are or from at an "
    "which not have has but all were one they can their more when there been "
    "connection proxy server client data record file buffer process child socket "
    "address port network traffic request response header length option value "
    "default error return system user time state read write open close start stop"
).split()


def gen_text(a):
    rnd = random.Random(1)
    remaining = a.bytes
    with open(a.out, "w") as f:
        for _ in range(10**7):
            if remaining <= 0:
                break
            line = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 14)))
            line = line.capitalize() + ".\n"
            line = line[:remaining]
            f.write(line)
            remaining -= len(line)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("echo-server")
    e.add_argument("port", type=int)
    e.add_argument("--lifetime", type=float, default=900)
    r = sub.add_parser("rtt")
    r.add_argument("port", type=int)
    r.add_argument("--n", type=int, default=5000)
    r.add_argument("--size", type=int, default=64)
    r.add_argument("--warmup", type=int, default=200)
    h = sub.add_parser("hold")
    h.add_argument("port", type=int)
    h.add_argument("--n", type=int, default=200)
    h.add_argument("--release")
    h.add_argument("--max-hold", type=float, default=60)
    i = sub.add_parser("iperf-gbps")
    i.add_argument("file")
    i.add_argument("--bytes", action="store_true")
    g = sub.add_parser("gen-text")
    g.add_argument("out")
    g.add_argument("bytes", type=int)
    a = p.parse_args()
    fn = {"echo-server": echo_server, "rtt": rtt, "hold": hold,
          "iperf-gbps": iperf_gbps, "gen-text": gen_text}[a.cmd]
    try:
        return fn(a) or 0
    except OSError as ex:
        print(f"ERR {ex}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
