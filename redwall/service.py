"""Running redwall as a service on one data home: ``redwall ui`` (``dagster dev``: the UI and the
daemon in one command, for an analyst's desk) and ``redwall serve`` (``dagster-webserver`` and
``dagster-daemon``, the production start).

- **One service per home and per port.** A lock file under the home (``dagster/service.lock``,
  an advisory lock the kernel drops when its holder dies, so a crash leaves nothing to clean)
  says who serves it; a second start on the same home, or on a port already taken, refuses with a
  plain message and exit status :data:`REFUSED`. Two daemons on one home would each start the
  same sensor runs.
- **Nothing outlives it.** The children run in one process group of their own; SIGINT or SIGTERM
  to redwall stops the whole group (the webserver, the daemon, their code servers and any run in
  progress — a run stopped mid-way is safe to repeat, see :mod:`redwall.ingest.load`): SIGTERM,
  then SIGKILL for whatever is still there after :data:`STOP_GRACE_SECONDS`. If one child ends on
  its own, the others are stopped too, and redwall exits with its status.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from redwall.home import INSTANCE_DB_ENV, Home

LOCK_NAME = "service.lock"
STOP_GRACE_SECONDS = 20
REFUSED = 2
GRPC_TIMEOUT_SECONDS = 300
_POLL_SECONDS = 0.5


class Refused(RuntimeError):
    """The service cannot start here; the message says why and what to do."""


def port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closing socket is not a server
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


@contextmanager
def service_lock(home: Home, facts: dict[str, object]) -> Iterator[None]:
    """Hold the home's service lock while the block runs, with ``facts`` written into it for
    whoever finds it taken."""
    path = home.dagster_home / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by the children
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 4096).decode("utf-8", errors="replace")
        os.close(fd)
        raise Refused(_already_served(home, holder)) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(facts).encode("utf-8"))
        yield
    finally:
        os.ftruncate(fd, 0)
        os.close(fd)  # releases the lock


def _already_served(home: Home, holder: str) -> str:
    try:
        held = json.loads(holder)
        who, pid = (
            f"`redwall {held['command']}` (pid {held['pid']}, port {held['port']}, since {held['started']})",
            held["pid"],
        )
    except (ValueError, KeyError, TypeError):
        who, pid = "another redwall service", "<pid>"
    return f"{who} already serves the data home {home.root}; stop it first (Ctrl-C in its terminal, or kill {pid})."


def _default_signals() -> None:
    # A parent started without a terminal may ignore SIGINT/SIGTERM, and children inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _group_alive(pgid: int, children: Sequence[subprocess.Popen]) -> bool:
    for child in children:
        child.poll()  # reap: a zombie still counts as a member of the group
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(pgid: int, children: Sequence[subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to every process of the group, then SIGKILL to what is left after ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not _group_alive(pgid, children):
            return
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(pgid, children):
            time.sleep(_POLL_SECONDS)


def supervise(commands: Sequence[Sequence[str]], env: dict[str, str], cwd: Path) -> int:
    """Run the commands in one new process group until a signal or until one of them ends; then
    stop the group. Returns 0 when stopped by a signal, else the status of the child that ended."""
    stopping: list[int] = []
    previous = {
        s: signal.signal(s, lambda signum, _frame: stopping.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)
    }
    children: list[subprocess.Popen] = []
    try:
        for command in commands:
            children.append(
                subprocess.Popen(
                    list(command),
                    env=env,
                    cwd=cwd,
                    preexec_fn=_default_signals,
                    process_group=children[0].pid if children else 0,
                )
            )
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(_POLL_SECONDS)
    finally:
        if children:
            stop_group(children[0].pid, children)
        for s, handler in previous.items():
            signal.signal(s, handler)
    if stopping:
        return 0
    ended = next(child for child in children if child.returncode is not None)
    name = Path(cast(list[str], ended.args)[0]).name
    print(f"{name} ended with status {ended.returncode}; the service stopped.", file=sys.stderr)
    return ended.returncode or 1


def create_instance_tables(env: dict[str, str], cwd: Path) -> None:
    """Create (or upgrade) a PostgreSQL instance's tables before anything else opens it: every
    process that opens a new instance database creates its tables, and the webserver, the daemon,
    the first run and the Celery workers doing so at once collide in PostgreSQL's catalogue
    (dagster-postgres retries only briefly). SQLite files are created by whoever opens them first."""
    if not env.get(INSTANCE_DB_ENV):
        return
    dagster = Path(sys.executable).parent / "dagster"
    subprocess.run([str(dagster), "instance", "migrate"], env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def run_service(home: Home, command: str, host: str, port: int, children: Sequence[Sequence[str]], cwd: Path) -> int:
    """Serve ``home`` with ``children`` under the home's lock, refusing when it or the port is taken."""
    facts = {
        "command": command,
        "pid": os.getpid(),
        "port": port,
        "host": host,
        "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    env = {**os.environ, "DAGSTER_HOME": str(home.dagster_home), "REDWALL_HOME": str(home.root)}
    # A busy machine's code server can take more than Dagster's 60 s to launch a run; a launch that
    # times out fails the run (the run queue then runs it again, see home.DAGSTER_YAML).
    env.setdefault("DAGSTER_GRPC_TIMEOUT_SECONDS", str(GRPC_TIMEOUT_SECONDS))
    try:
        with service_lock(home, facts):
            if port_taken(host, port):
                raise Refused(f"port {port} on {host} is already in use; choose another with --port.")
            create_instance_tables(env, cwd)
            print(f"redwall {command}: serving {home.root} on http://{host}:{port} (Ctrl-C stops it)", flush=True)
            return supervise(children, env, cwd)
    except Refused as refused:
        print(f"redwall {command} refused: {refused}", file=sys.stderr)
        return REFUSED
