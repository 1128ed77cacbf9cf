"""A delay line for loopback traffic (the kernel here has no netem): every packet that an iptables NFQUEUE rule
on INPUT hands over is accepted `--delay-ms` later, in order. Run inside the benchmark's network namespace;
a packet crosses INPUT once per direction, so the round trip grows by twice the delay.

    ip netns exec NS iptables -A INPUT -j NFQUEUE --queue-num 0
    ip netns exec NS build/delayenv/bin/python tools/bench/delay_line.py --delay-ms 10
"""

from __future__ import annotations

import argparse
import collections
import select
import signal
import socket
import sys
import time

from netfilterqueue import NetfilterQueue


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, required=True, help="delay per packet (half the added RTT)")
    parser.add_argument("--queue", type=int, default=0)
    args = parser.parse_args()
    delay = args.delay_ms / 1000
    pending: collections.deque = collections.deque()

    def hold(packet) -> None:
        pending.append((time.monotonic() + delay, packet))

    queue = NetfilterQueue()
    queue.bind(args.queue, hold, max_len=65536)
    netlink = socket.fromfd(queue.get_fd(), socket.AF_UNIX, socket.SOCK_STREAM)
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"delay line: {args.delay_ms} ms per packet on queue {args.queue}", flush=True)
    try:
        while running:
            wait = max(0.0, pending[0][0] - time.monotonic()) if pending else 0.5
            readable, _, _ = select.select([netlink], [], [], wait)
            if readable:
                queue.run(block=False)
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                pending.popleft()[1].accept()
    finally:
        while pending:  # let nothing hang when the line stops
            pending.popleft()[1].accept()
        queue.unbind()
    return 0


if __name__ == "__main__":
    sys.exit(main())
