"""The whole pipeline with its lake on a real S3 server (SeaweedFS, started per test): nothing of
the lake on local disk, every receipt balanced, the warehouse published from the store. Apart from
test_scaleout.py so that the two longest files of the suite run side by side on the two workers."""

from __future__ import annotations

import os
import subprocess

import duckdb

from redwall import lake
from redwall.home import Home
from tests.servers import BIN, s3_server, service_environment


def test_the_pipeline_runs_with_its_lake_on_an_s3_server(tmp_path):
    with s3_server(tmp_path / "s3") as storage:
        root = tmp_path / "home"
        env = service_environment(Home.at(root), REDWALL_LAKE_URI="s3://redwall/street/lake", **storage)
        done = subprocess.run(
            [BIN / "redwall", "--home", str(root), "demo", "--scale", "small", "--days", "7"],
            env={k: v for k, v in env.items() if k != "REDWALL_PSEUDONYM_KEY"},  # a demo home's own key
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert not (root / "lake").exists()  # nothing of the lake on local disk
        for variable, value in storage.items():
            os.environ[variable] = value
        try:
            home = Home(root=root, lake_uri="s3://redwall/street/lake")
            receipts = lake.read(home, "ops", "file_receipt")
            assert receipts.height > 0
            assert (receipts["rows_read"] == receipts["rows_accepted"] + receipts["rows_rejected"]).all()
            assert lake.read(home, "mart", "person").height > 0
            assert lake.read(home, "quality", "issue").height > 0
        finally:
            for variable in storage:
                os.environ.pop(variable)
        with duckdb.connect(str(root / "warehouse" / "redwall.duckdb"), read_only=True) as con:
            published = {
                f"{s}.{t}" for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
            }
        assert {"mart.person", "ops.file_receipt", "quality.issue", "catalog.resource"} <= published
