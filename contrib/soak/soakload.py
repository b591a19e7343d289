#!/usr/bin/env python3
"""Loopback-only load client and backend for contrib/soak/run.sh (stdlib only).

Subcommands:
  backend PORTFILE [--lifetime S]
        a server on 127.0.0.1:0 (port written to PORTFILE): reads each
        connection to EOF, answers the SHA-256 (hex) of what it got, closes.
  run PORT --n N [--conc C --big-every K --big-bytes B --deadline S]
        N connections, C at a time: each sends a payload (every K-th one B
        bytes of text-like data, the others about 100 bytes), half-closes and
        checks the answer is the payload's SHA-256 (the relay was byte-exact).
        Prints "done N ok OK bad BAD refused R secs T rate X".
  hold PORT --n N --send B [--release FILE --max-hold S]
        open N connections, send B bytes on each (no half-close), print
        "READY N", keep them open until FILE exists (at most S seconds), then
        half-close and read to EOF; prints "released N eof E reset R".
  idle PORT --n N [--release FILE --max-hold S]
        open N connections that never send; print "READY N" once all are
        connected (the kernel's backlog accepts them), wait for FILE, close.
  gzcheck FILE...
        for each gzip file (possibly truncated at a flush point), print
        "NAME BYTES" of what decompresses, and "error" instead when not
        even the first flush is readable.
Every address is 127.0.0.1; every loop is bounded in count and time.
"""
import argparse
import asyncio
import hashlib
import os
import random
import socket
import sys
import time
import zlib

HOST = "127.0.0.1"


def text_block(n, seed):
    """n bytes of English-like text (compressible like real traffic)."""
    rnd = random.Random(seed)
    words = [
        "license", "checkout", "server", "feature", "select", "from", "where",
        "user", "table", "commit", "vendor", "daemon", "token", "granted",
        "denied", "update", "insert", "values", "order", "group", "limit",
    ]
    out = bytearray()
    while len(out) < n:
        out += (" ".join(rnd.choice(words) for _ in range(12)) + ".\n").encode()
    return bytes(out[:n])


async def backend_conn(reader, writer):
    h = hashlib.sha256()
    try:
        while True:
            b = await reader.read(262144)
            if not b:
                break
            h.update(b)
        writer.write(h.hexdigest().encode())
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def backend(a):
    srv = await asyncio.start_server(backend_conn, HOST, 0, backlog=4096)
    port = srv.sockets[0].getsockname()[1]
    tmp = a.portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.rename(tmp, a.portfile)
    await asyncio.sleep(a.lifetime)


async def one(port, payload, digest, stats):
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except (ConnectionError, OSError):
        stats["refused"] += 1
        return
    try:
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        got = await reader.read(200)
        stats["ok" if got == digest else "bad"] += 1
    except (ConnectionError, OSError):
        stats["bad"] += 1
    finally:
        writer.close()


async def run(a):
    small = [text_block(80 + i % 40, i) for i in range(64)]
    small_d = [hashlib.sha256(p).hexdigest().encode() for p in small]
    big = text_block(a.big_bytes, 7)
    big_d = hashlib.sha256(big).hexdigest().encode()
    stats = {"ok": 0, "bad": 0, "refused": 0}
    sem = asyncio.Semaphore(a.conc)
    t0 = time.monotonic()
    deadline = t0 + a.deadline

    async def task(i):
        async with sem:
            if time.monotonic() > deadline:
                stats["refused"] += 1
                return
            if a.big_every and i % a.big_every == a.big_every - 1:
                await one(a.port, big, big_d, stats)
            else:
                await one(a.port, small[i % 64], small_d[i % 64], stats)

    # bounded number of pending tasks at a time
    i = 0
    pending = set()
    while i < a.n:
        while len(pending) < a.conc * 4 and i < a.n:
            pending.add(asyncio.ensure_future(task(i)))
            i += 1
        _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if pending:
        await asyncio.wait(pending)
    secs = time.monotonic() - t0
    print(f"done {a.n} ok {stats['ok']} bad {stats['bad']} refused {stats['refused']} "
          f"secs {secs:.1f} rate {a.n / secs:.0f}", flush=True)


def wait_release(a):
    end = time.monotonic() + a.max_hold
    while time.monotonic() < end and not (a.release and os.path.exists(a.release)):
        time.sleep(0.05)


def hold(a):
    data = text_block(a.send, 3)
    socks = []
    for _ in range(a.n):
        s = socket.create_connection((HOST, a.port), timeout=30)
        s.sendall(data)
        socks.append(s)
    print(f"READY {len(socks)}", flush=True)
    wait_release(a)
    eof = reset = 0
    for s in socks:
        try:
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
            eof += 1
        except OSError:
            reset += 1
        s.close()
    print(f"released {len(socks)} eof {eof} reset {reset}", flush=True)


def idle(a):
    socks = []
    for _ in range(a.n):
        s = socket.socket()
        s.settimeout(30)
        s.connect((HOST, a.port))
        socks.append(s)
    print(f"READY {len(socks)}", flush=True)
    wait_release(a)
    for s in socks:
        s.close()
    print(f"released {len(socks)}", flush=True)


def gzcheck(a):
    for name in a.files:
        d = zlib.decompressobj(wbits=31)
        n = 0
        with open(name, "rb") as f:
            data = f.read()
        try:
            n = len(d.decompress(data))
        except zlib.error:
            pass
        print(f"{name} {n if n else 'error'}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("backend")
    b.add_argument("portfile")
    b.add_argument("--lifetime", type=float, default=3600)
    r = sub.add_parser("run")
    r.add_argument("port", type=int)
    r.add_argument("--n", type=int, required=True)
    r.add_argument("--conc", type=int, default=32)
    r.add_argument("--big-every", type=int, default=0)
    r.add_argument("--big-bytes", type=int, default=4 << 20)
    r.add_argument("--deadline", type=float, default=3600)
    for name in ("hold", "idle"):
        h = sub.add_parser(name)
        h.add_argument("port", type=int)
        h.add_argument("--n", type=int, required=True)
        h.add_argument("--release")
        h.add_argument("--max-hold", type=float, default=120)
        if name == "hold":
            h.add_argument("--send", type=int, default=1000)
    g = sub.add_parser("gzcheck")
    g.add_argument("files", nargs="*")
    a = ap.parse_args()
    if a.cmd == "backend":
        asyncio.run(backend(a))
    elif a.cmd == "run":
        asyncio.run(run(a))
    elif a.cmd == "hold":
        hold(a)
    elif a.cmd == "idle":
        idle(a)
    else:
        gzcheck(a)


if __name__ == "__main__":
    sys.exit(main())
