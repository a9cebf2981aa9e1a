"""A connection from the isolated guest to one service on the host's loopback: QEMU's
guestfwd runs this per connection (`cmd:`), the guest's bytes on stdin, its answer to
stdout. Usage: qemu_relay.py HOST PORT."""

import os
import select
import socket
import sys

s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
ends = {sys.stdin.fileno(): s.fileno(), s.fileno(): sys.stdout.fileno()}
while ends:
    ready, _, _ = select.select(list(ends), [], [], 120)
    if not ready:
        break
    for fd in ready:
        data = os.read(fd, 65536)
        if not data:
            if fd == sys.stdin.fileno():
                s.shutdown(socket.SHUT_WR)
            ends.pop(fd)
            if fd == s.fileno():
                ends.clear()
            continue
        if ends[fd] == s.fileno():
            s.sendall(data)
        else:
            os.write(ends[fd], data)
