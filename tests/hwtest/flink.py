"""StreamJob test helpers: the shared Flink session cluster, Kafka topics the tests fill, and
the files a Flink filesystem sink commits.

Destructive actions (cancel, stop) only ever touch jobs a test submitted itself."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hwtest import require
from hwtest.kubectl import wait_for


class FlinkRest:
    """A few JobManager REST calls for assertions (the operator has its own client)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def get(self, path: str) -> Any:
        resp = requests.get(self.url + path, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.get(f"/jobs/{job_id}"))

    def state(self, job_id: str) -> str:
        return str(self.job(job_id)["state"])

    def parallelism(self, job_id: str) -> int:
        return max(int(v["parallelism"]) for v in self.job(job_id)["vertices"])

    def cancel(self, job_id: str) -> None:
        requests.patch(f"{self.url}/jobs/{job_id}", params={"mode": "cancel"}, timeout=10)

    def free_slots(self) -> int:
        return int(self.get("/overview")["slots-available"])

    def wait_slots(self, n: int, timeout: float = 120) -> None:
        wait_for(lambda: self.free_slots() >= n, timeout, 1, what=f"{n} free Flink task slots")


class Topic:
    """A Kafka topic with a unique name, filled with JSON rows."""

    def __init__(self, bootstrap: str, name: str, partitions: int = 1):
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient, NewTopic

        self.bootstrap, self.name = bootstrap, name
        admin = AdminClient({"bootstrap.servers": bootstrap})
        futures = admin.create_topics([NewTopic(name, partitions, 1)])
        futures[name].result(30)
        self._admin = admin
        self._producer = Producer({"bootstrap.servers": bootstrap})

    def send(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._producer.produce(self.name, json.dumps(row).encode())
        assert self._producer.flush(30) == 0, "Kafka did not acknowledge every row"

    def delete(self) -> None:
        self._admin.delete_topics([self.name])


def sink_rows(directory: Path) -> list[dict[str, Any]]:
    """Rows in the committed files of a Flink filesystem sink (json format). In-progress and
    pending files are hidden (`.part-...`) until a checkpoint commits them."""
    rows: list[dict[str, Any]] = []
    if not directory.exists():
        return rows
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.name.startswith(".") and "_SUCCESS" not in path.name:
            rows.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return rows


@pytest.fixture(scope="session")
def flink(service: Callable[[str], dict[str, str]]) -> dict[str, str]:
    """The shared Flink session cluster (+ SQL gateway): its env from hack/services.sh."""
    return service("flink")


@pytest.fixture(scope="session")
def flink_rest(flink: dict[str, str]) -> FlinkRest:
    return FlinkRest(flink["HEADWATER_FLINK_URL"])


@pytest.fixture(scope="session")
def sj_kafka(service: Callable[[str], dict[str, str]]) -> dict[str, str]:
    """The shared Kafka (topics get unique names)."""
    return service("kafka")


@pytest.fixture
def sj_topic(sj_kafka: dict[str, str]) -> Iterator[Topic]:
    t = Topic(sj_kafka["HEADWATER_KAFKA_BOOTSTRAP"], f"hw-sj-{secrets.token_hex(4)}")
    yield t
    t.delete()


@pytest.fixture
def flink_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory the local JobManager/TaskManager can write (same machine, same user)."""
    return tmp_path_factory.mktemp("flink-state")


# A DataStream program for jar submissions: numbers at the rate given as program arguments
# (it refuses to start without them, so a run proves the arguments arrived) into a discarding
# sink. The source's position is its state; explicit uids let a savepoint map onto a new job.
# The job name comes from the configuration (`pipeline.name`), as the operator sets it.
NUMBERS_JAVA = """
package headwater.test;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

public final class Numbers {
    public static void main(String[] args) throws Exception {
        if (args.length != 2 || !args[0].equals("--rate")) {
            throw new IllegalArgumentException("usage: --rate <numbers per second>");
        }
        double rate = Double.parseDouble(args[1]);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        DataGeneratorSource<Long> source = new DataGeneratorSource<>(
            n -> n, Long.MAX_VALUE, RateLimiterStrategy.perSecond(rate), Types.LONG);
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "numbers").uid("numbers")
            .sinkTo(new DiscardingSink<>()).uid("discard");
        env.execute();
    }
}
"""
NUMBERS_CLASS = "headwater.test.Numbers"


def _javac() -> str | None:
    # Flink 2.3 runs on JDK 17 (hack/services.sh prefers Debian's); compile for it.
    jdk17 = Path("/usr/lib/jvm/java-17-openjdk-amd64/bin/javac")
    return str(jdk17) if jdk17.exists() else shutil.which("javac")


def build_numbers_jar(lib_dir: Path, out: Path) -> Path:
    """Compile NUMBERS_JAVA against the cluster's own flink-dist into `out`/numbers.jar."""
    javac = _javac()
    require(javac is not None, "javac (a JDK, to build the test jar)")
    assert javac is not None
    dist = sorted(lib_dir.glob("flink-dist-*.jar"))
    assert dist, f"no flink-dist jar in {lib_dir}"
    src = out / "src" / "Numbers.java"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(NUMBERS_JAVA)
    classes = out / "classes"
    subprocess.run(
        [javac, "--release", "17", "-d", str(classes), "-cp", str(dist[0]), str(src)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    jar = out / "numbers.jar"
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n\n")
        for path in sorted(classes.rglob("*.class")):
            z.write(path, path.relative_to(classes).as_posix())
    return jar


@pytest.fixture(scope="session")
def numbers_jar(flink: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_numbers_jar(
        Path(flink["HEADWATER_FLINK_LIB_DIR"]), tmp_path_factory.mktemp("numbers-jar")
    )


__all__ = [
    "NUMBERS_CLASS",
    "FlinkRest",
    "Topic",
    "flink",
    "flink_dir",
    "flink_rest",
    "numbers_jar",
    "sink_rows",
    "sj_kafka",
    "sj_topic",
]
