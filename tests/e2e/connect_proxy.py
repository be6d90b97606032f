#!/usr/bin/env python3
"""An HTTP CONNECT proxy for the e2e case kubeconfig_proxy (a kubeconfig's proxy-url).

    connect_proxy.py PORT LOGFILE

Tunnels every CONNECT to its target and appends "CONNECT host:port" to LOGFILE, so the case
can tell that the traffic went through it. Anything but CONNECT is answered 405.
"""
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(reader, writer, log):
    head = await reader.readuntil(b"\r\n\r\n")
    method, target = head.split(b" ")[:2]
    if method != b"CONNECT":
        writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
        writer.close()
        return
    host, port = target.decode().rsplit(":", 1)
    with open(log, "a") as f:
        print("CONNECT", target.decode(), file=f, flush=True)
    up_r, up_w = await asyncio.open_connection(host, int(port))
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    await writer.drain()
    await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))


async def main():
    port, log = int(sys.argv[1]), sys.argv[2]
    server = await asyncio.start_server(lambda r, w: handle(r, w, log), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


asyncio.run(main())
