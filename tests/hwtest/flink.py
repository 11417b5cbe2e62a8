"""StreamJob test helpers: the shared Flink session cluster, Kafka topics the tests fill, and
the files a Flink filesystem sink commits.

Destructive actions (cancel, stop) only ever touch jobs a test submitted itself."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

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


__all__ = [
    "FlinkRest",
    "Topic",
    "flink",
    "flink_dir",
    "flink_rest",
    "sink_rows",
    "sj_kafka",
    "sj_topic",
]
