"""Forward TCP ports of 127.0.0.1 in this network namespace to 127.0.0.1 inside another one.

    python tests/servers/forward.py --netns NAME HOST_PORT:NS_PORT [HOST_PORT:NS_PORT ...]

The listening sockets are made first, then the process enters the namespace (setns), so every connection it
makes goes to a server there (XRootD 5.5 cannot bind to loopback only, so it runs in its own namespace).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import socket
import threading

CLONE_NEWNET = 0x40000000


def enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    if libc.setns(descriptor, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), f"setns into {name} failed")
    os.close(descriptor)


def pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(1 << 16):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def serve(listener: socket.socket, inner_port: int) -> None:
    while True:
        client, _ = listener.accept()
        try:
            server = socket.create_connection(("127.0.0.1", inner_port))
        except OSError:
            client.close()
            continue
        for a, b in ((client, server), (server, client)):
            a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=pump, args=(a, b), daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netns", required=True)
    parser.add_argument("ports", nargs="+", help="HOST_PORT:NS_PORT")
    args = parser.parse_args()
    listeners = []
    for pair in args.ports:
        outer, inner = (int(p) for p in pair.split(":"))
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", outer))
        listener.listen(64)
        listeners.append((listener, inner))
    enter_netns(args.netns)
    threads = [threading.Thread(target=serve, args=pair, daemon=True) for pair in listeners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
