#!/usr/bin/env python3
"""Runs a command on a terminal of its own, as a person at a terminal would: tests/tty_test.ts
uses it (the test runner has no terminal). The command leads a new session whose controlling
terminal is the slave of a fresh pty of the given size; this script holds the master, plays a
script of steps on it, and prints one JSON object: everything the terminal showed, the exit status,
and whether a step or the run timed out.

Usage: _pty.py ROWS COLUMNS STEPS_JSON TIMEOUT_S -- COMMAND [ARGS...]
Steps: {"expect": TEXT} waits until the output so far holds TEXT; {"send": TEXT} types TEXT;
{"resize": [ROWS, COLUMNS]} resizes the terminal (SIGWINCH to its foreground group);
{"sleep": SECONDS}.
"""
import fcntl
import json
import os
import pty
import select
import signal
import struct
import sys
import termios
import time


def main() -> int:
    rows, cols, steps, timeout = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4])
    assert sys.argv[5] == "--"
    argv = sys.argv[6:]
    pid, master = pty.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    out = bytearray()
    deadline = time.monotonic() + timeout
    timed_out = None

    def pump(wait: float) -> bool:
        """Reads what the terminal shows for up to `wait` seconds; False at EOF/EIO."""
        r, _, _ = select.select([master], [], [], max(0.0, wait))
        if not r:
            return True
        try:
            data = os.read(master, 65536)
        except OSError:
            return False
        if not data:
            return False
        out.extend(data)
        return True

    alive = True
    for step in steps:
        if "expect" in step:
            want = step["expect"].encode()
            until = min(deadline, time.monotonic() + step.get("timeout", timeout))
            while want not in out and alive and time.monotonic() < until:
                alive = pump(until - time.monotonic())
            if want not in out:
                timed_out = f"expect {step['expect']!r}"
                break
        elif "send" in step:
            os.write(master, step["send"].encode())
        elif "resize" in step:
            r, c = step["resize"]
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", r, c, 0, 0))
        elif "sleep" in step:
            until = time.monotonic() + step["sleep"]
            while alive and time.monotonic() < until:
                alive = pump(until - time.monotonic())
    while alive and time.monotonic() < deadline:
        alive = pump(deadline - time.monotonic())
    if alive and timed_out is None:
        timed_out = "the run"
    status = None
    until = time.monotonic() + (5 if timed_out is None else 0)
    while True:
        got, raw = os.waitpid(pid, os.WNOHANG)
        if got:
            status = os.waitstatus_to_exitcode(raw)
            break
        if time.monotonic() >= until:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            timed_out = timed_out or "the exit"
            break
        time.sleep(0.02)
    print(json.dumps({"output": out.decode("utf-8", "replace"), "status": status, "timedOut": timed_out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
