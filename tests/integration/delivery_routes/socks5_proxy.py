#!/usr/bin/env python3
"""A tiny SOCKS5 proxy for tests (standard library only): RFC 1928
CONNECT with IPv4/IPv6 addresses, RFC 1929 username/password required
when USER is given.

    socks5_proxy.py PORT LOG [USER PASSWORD]

Appends "CONNECT <ip> <port> user=<user>" or "AUTHFAIL <user>" to LOG per
connection.  Prints "ready".
"""
import asyncio
import ipaddress
import sys

PORT = int(sys.argv[1])
LOG = sys.argv[2]
USER = sys.argv[3] if len(sys.argv) > 4 else None
PASSWORD = sys.argv[4] if len(sys.argv) > 4 else None


def log(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def handle(reader, writer):
    user = "-"
    try:
        ver, n = await reader.readexactly(2)
        methods = await reader.readexactly(n)
        if ver != 5:
            return
        want = 2 if USER is not None else 0
        if want not in methods:
            writer.write(b"\x05\xff")
            await writer.drain()
            return
        writer.write(bytes([5, want]))
        await writer.drain()
        if want == 2:
            v, ul = await reader.readexactly(2)
            user = (await reader.readexactly(ul)).decode()
            (pl,) = await reader.readexactly(1)
            password = (await reader.readexactly(pl)).decode()
            if v != 1 or user != USER or password != PASSWORD:
                log(f"AUTHFAIL {user}")
                writer.write(b"\x01\x01")
                await writer.drain()
                return
            writer.write(b"\x01\x00")
            await writer.drain()
        ver, cmd, _, atyp = await reader.readexactly(4)
        if atyp == 1:
            ip = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif atyp == 4:
            ip = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        else:
            writer.write(b"\x05\x08\x00\x01\x00\x00\x00\x00\x00\x00")
            await writer.drain()
            return
        port = int.from_bytes(await reader.readexactly(2), "big")
        log(f"CONNECT {ip} {port} user={user}")
        try:
            treader, twriter = await asyncio.open_connection(ip, port)
        except OSError:
            writer.write(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")
            await writer.drain()
            return
        writer.write(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")
        await writer.drain()
        await asyncio.gather(pipe(reader, twriter), pipe(treader, writer))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", PORT)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
