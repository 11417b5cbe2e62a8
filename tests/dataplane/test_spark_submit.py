"""The spark-submit command line the operator renders, run for real with PyPI's pyspark.

The rendered container (`command` + `args`) is taken from the Job object as it is; only what
cannot work off-cluster is swapped: the binary (the cached pyspark wrapper), `--master`
(k8s -> local[1]) and `--deploy-mode` (cluster -> client: local masters only run in client
mode). Every --conf, the application file and its arguments stay as rendered, so quoting,
ordering and conf names are verified by Spark itself on a tiny dataset."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from headwater.api.streamjob import StreamJobSpec
from headwater.render.common import Owner
from headwater.render.sparkjob import SparkFacts, render_spark

ETL = """
import argparse, json
from pyspark.sql import SparkSession, functions as F

p = argparse.ArgumentParser()
p.add_argument("--input"); p.add_argument("--output"); p.add_argument("--min-amount", type=float)
a = p.parse_args()
spark = SparkSession.builder.getOrCreate()
conf = spark.sparkContext.getConf()
df = spark.read.json(a.input).where(F.col("amount") >= a.min_amount)
out = df.groupBy("customer").agg(F.sum("amount").alias("total")).orderBy("customer")
result = {
    "rows": [r.asDict() for r in out.collect()],
    "app": conf.get("spark.app.name"),
    "partitions": conf.get("spark.sql.shuffle.partitions"),
    "executors": conf.get("spark.executor.instances"),
}
open(a.output, "w").write(json.dumps(result))
spark.stop()
"""


def test_rendered_spark_submit_runs_in_local_mode(
    service: Callable[[str], dict[str, str]], tmp_path: Path
) -> None:
    env = service("pyspark")
    app = tmp_path / "orders_etl.py"
    app.write_text(ETL)
    data = tmp_path / "orders.json"
    data.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"customer": "ada", "amount": 10.0},
                {"customer": "ada", "amount": 5.5},
                {"customer": "bob", "amount": 1.0},
                {"customer": "bob", "amount": 7.0},
            ]
        )
    )
    result = tmp_path / "result.json"
    spec = StreamJobSpec.model_validate(
        {
            "platformRef": {"name": "shop"},
            "engine": "spark",
            "spark": {
                "application": {
                    "file": f"file://{app}",
                    "args": ["--input", str(data), "--output", str(result), "--min-amount", "2"],
                },
                "driver": {"cores": 1, "memory": "512m"},
                "executor": {"instances": 2, "cores": 1, "memory": "512m"},
                "conf": {"spark.sql.shuffle.partitions": "3", "spark.ui.enabled": "false"},
            },
        }
    )
    facts = SparkFacts(
        master_url="k8s://https://kubernetes.default.svc",
        service_account="shop-spark",
        image="apache/spark:4.0.1-python3",
        s3_endpoint="http://shop-minio.shop.svc:9000",
        s3_secret="shop-minio-root",
    )
    [job] = render_spark(spec, Owner("StreamJob", "orders-etl", "shop", "u-1"), facts)
    container = job["spec"]["template"]["spec"]["containers"][0]
    argv = [*container["command"], *container["args"]]
    assert argv[0] == "/opt/spark/bin/spark-submit"
    argv[0] = env["SPARK_SUBMIT"]
    argv[argv.index("--master") + 1] = "local[1]"
    argv[argv.index("--deploy-mode") + 1] = "client"

    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads(result.read_text())
    assert got["rows"] == [{"customer": "ada", "total": 15.5}, {"customer": "bob", "total": 7.0}]
    assert got["app"] == "shop-orders-etl"
    assert got["partitions"] == "3" and got["executors"] == "2"
