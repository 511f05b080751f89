"""The PostgreSQL server's processor time for one database, read from ``/proc``: what the
booking benchmark's database costs the machine beside the booking processes."""

from __future__ import annotations

import os

#: The server's own processes, which work for every database (the postmaster has no name
#: of its own in its command line).
_SERVER_AUXILIARIES = ("checkpointer", "background writer", "walwriter",
                       "autovacuum launcher", "bin/postgres")


def server_ticks(database: str) -> dict[str, int]:
    """Processor time so far (clock ticks) of the PostgreSQL processes on this machine that
    work for ``database``: its connections and autovacuum workers and the server's shared
    writers, not the connections to other databases (another run's tests, say). None for
    SQLite, which runs inside the booking processes."""
    ticks: dict[str, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if not f.read().startswith(("postgres", "postmaster")):
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if f" {database} " not in command and not any(a in command
                                                       for a in _SERVER_AUXILIARIES):
            continue
        ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks


def server_seconds_since(before: dict[str, int], database: str) -> float:
    """Processor seconds the server spent for ``database`` since ``before`` (a process
    started meanwhile counts whole)."""
    return sum(t - before.get(pid, 0) for pid, t in server_ticks(database).items()) / \
        os.sysconf("SC_CLK_TCK")
