#!/usr/bin/env python3
"""Open N PostgreSQL client connections, run SELECT 1 on each, keep them idle.

Used by bench/run.sh to measure a pooler's memory per idle client. Speaks the
frontend/backend protocol 3.0 directly over asyncio streams (no driver), so
that the client side costs little and sends nothing but a startup packet and
one simple query per connection. Authentication: trust, cleartext or md5.

When every connection has logged in and run its query (or failed), one line
"ok=N failed=M" is written to --ready-file (and stdout); the connections are
then held open until SIGTERM/SIGINT or --hold seconds, whichever comes first.
"""
import argparse
import asyncio
import hashlib
import os
import signal
import struct
import sys


class ProtocolError(Exception):
    pass


async def read_msg(reader):
    head = await reader.readexactly(5)
    kind = head[:1]
    (length,) = struct.unpack("!i", head[1:])
    if length < 4:
        raise ProtocolError("bad message length %d" % length)
    body = await reader.readexactly(length - 4)
    return kind, body


def error_text(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode("utf-8", "replace")
    return "%s %s: %s" % (fields.get(b"S", "?"), fields.get(b"C", "?"), fields.get(b"M", "?"))


async def until_ready(reader, writer, args):
    """Read server messages until ReadyForQuery, answering auth requests."""
    while True:
        kind, body = await read_msg(reader)
        if kind == b"Z":
            return
        if kind == b"E":
            raise ProtocolError(error_text(body))
        if kind == b"R":
            (code,) = struct.unpack("!i", body[:4])
            if code == 0:
                continue
            if code == 3:  # cleartext
                pw = args.password.encode() + b"\0"
            elif code == 5:  # md5
                salt = body[4:8]
                inner = hashlib.md5(args.password.encode() + args.user.encode()).hexdigest()
                pw = b"md5" + hashlib.md5(inner.encode() + salt).hexdigest().encode() + b"\0"
            else:
                raise ProtocolError("unsupported authentication request %d" % code)
            writer.write(b"p" + struct.pack("!i", len(pw) + 4) + pw)
            await writer.drain()
        # ParameterStatus, BackendKeyData, NoticeResponse, RowDescription,
        # DataRow, CommandComplete: nothing to do.


async def one_client(args, sem, held):
    async with sem:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(args.host, args.port,
                                    local_addr=(args.source, 0) if args.source else None),
            args.timeout)
        try:
            params = b""
            for k, v in (("user", args.user), ("database", args.dbname),
                         ("application_name", "idle_clients")):
                params += k.encode() + b"\0" + v.encode() + b"\0"
            params += b"\0"
            writer.write(struct.pack("!ii", len(params) + 8, 196608) + params)
            await writer.drain()
            await asyncio.wait_for(until_ready(reader, writer, args), args.timeout)
            q = b"SELECT 1\0"
            writer.write(b"Q" + struct.pack("!i", len(q) + 4) + q)
            await writer.drain()
            await asyncio.wait_for(until_ready(reader, writer, args), args.timeout)
        except BaseException:
            writer.close()
            raise
        held.append(writer)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--source", help="local address to connect from (e.g. 127.0.0.2): "
                    "more than ~28,000 clients need several, for the ephemeral ports")
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--dbname", default="postgres")
    ap.add_argument("--password", default=os.environ.get("PGPASSWORD", ""))
    ap.add_argument("-n", "--clients", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=100,
                    help="connections being set up at the same time")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds allowed for one connection's login and query")
    ap.add_argument("--hold", type=float, default=600.0,
                    help="seconds to keep the connections open at most")
    ap.add_argument("--ready-file")
    args = ap.parse_args()

    held = []
    sem = asyncio.Semaphore(args.concurrency)
    results = await asyncio.gather(
        *(one_client(args, sem, held) for _ in range(args.clients)),
        return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    line = "ok=%d failed=%d" % (len(held), len(errors))
    if errors:
        kinds = {}
        for e in errors:
            key = "%s: %s" % (type(e).__name__, e)
            kinds[key] = kinds.get(key, 0) + 1
        for key, count in sorted(kinds.items(), key=lambda kv: -kv[1])[:5]:
            print("idle_clients: %d x %s" % (count, key), file=sys.stderr)
    print(line, flush=True)
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(line + "\n")
        os.replace(tmp, args.ready_file)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.hold)
    except asyncio.TimeoutError:
        pass
    for w in held:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())
