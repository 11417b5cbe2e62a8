"""Property test: any DataPlatform the models accept renders into structurally valid
Kubernetes objects (names, labels, selectors, volumes, ports, owner references)."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.api.dataplatform import DataPlatformSpec
from headwater.render.common import Owner
from headwater.render.platform import PlatformContext, render_platform

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
MODES = st.sampled_from(["managed", "external", "disabled"])
names = st.from_regex(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?", fullmatch=True)
props = st.dictionaries(
    st.from_regex(r"[a-z][a-z.]{0,30}", fullmatch=True), st.text(max_size=40), max_size=4
)

EXTERNAL = {
    "kafka": {"bootstrapServers": ["k:9092"]},
    "connect": {"url": "http://c:8083"},
    "flink": {"restUrl": "http://f:8081"},
    "spark": {"masterUrl": "spark://s:7077"},
    "objectStore": {"endpoint": "http://s3:9000", "credentialsSecretRef": {"name": "s3"}},
    "monitoring": {"url": "http://p:9090"},
}


KAFKA_SECURITY = st.fixed_dictionaries(
    {},
    optional={
        "credentialsSecretRef": st.builds(
            lambda name, user, password: {
                "name": name,
                "usernameKey": user,
                "passwordKey": password,
            },
            names,
            st.sampled_from(["username", "user"]),
            st.sampled_from(["password", "pass"]),
        ),
        "saslMechanism": st.sampled_from(["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]),
        "tls": st.fixed_dictionaries(
            {"enabled": st.booleans()},
            optional={
                "caSecretRef": st.builds(lambda name: {"name": name, "key": "ca.crt"}, names),
                "insecureSkipVerify": st.booleans(),
            },
        ),
    },
)
MINIO_ENV = st.dictionaries(
    st.from_regex(r"MINIO_(API|SCANNER|HEAL|BROWSER)_[A-Z]{1,12}", fullmatch=True),
    st.text(max_size=20),
    max_size=3,
)
PROMETHEUS_FLAGS = st.dictionaries(
    st.sampled_from(["storage.tsdb.retention.size", "query.timeout", "web.enable-admin-api"]),
    st.one_of(st.sampled_from(["true", "false", "10GB", "2m"]), st.text(max_size=20)),
    max_size=3,
)


@st.composite
def platform_specs(draw: Any) -> dict[str, Any]:
    """Only specs the API accepts: a rejected one would test nothing (validation is asserted)."""
    spec: dict[str, Any] = {}
    for comp, ext in EXTERNAL.items():
        mode = draw(MODES)
        block: dict[str, Any] = {"mode": mode}
        if mode == "external":
            block["external"] = dict(ext)
        spec[comp] = block
    if spec["connect"]["mode"] == "managed" and spec["kafka"]["mode"] == "disabled":
        # Managed Connect needs a Kafka (the API refuses this combination).
        spec["kafka"] = {"mode": "external", "external": dict(EXTERNAL["kafka"])}
    if spec["kafka"]["mode"] == "external":
        spec["kafka"]["external"].update(draw(KAFKA_SECURITY))
    replicas = draw(st.integers(1, 9))
    spec["kafka"]["managed"] = {
        "replicas": replicas,
        "defaultReplicationFactor": draw(st.integers(1, replicas)),
        "config": draw(props),
    }
    spec["connect"]["managed"] = {"replicas": draw(st.integers(1, 4)), "config": draw(props)}
    spec["flink"]["managed"] = {
        "taskSlots": draw(st.integers(1, 8)),
        "sqlGateway": draw(st.booleans()),
        "taskManager": {"replicas": draw(st.integers(1, 5))},
        "config": draw(props),
    }
    spec["objectStore"]["managed"] = {
        "replicas": draw(st.sampled_from([1, 4, 8, 16])),
        "config": draw(MINIO_ENV),
        "region": draw(st.text(max_size=20)),
    }
    spec["monitoring"]["managed"] = {"config": draw(PROMETHEUS_FLAGS)}
    spec["paused"] = draw(st.booleans())
    return spec


def _check_object(obj: dict[str, Any], owner: Owner) -> None:
    meta = obj["metadata"]
    assert obj["apiVersion"] and obj["kind"]
    assert DNS_LABEL.match(meta["name"]) and len(meta["name"]) <= 63, meta["name"]
    assert meta["namespace"] == owner.namespace
    assert meta["ownerReferences"][0]["uid"] == owner.uid
    for key, value in meta["labels"].items():
        assert len(value) <= 63 and LABEL_VALUE.match(value), (key, value)
    if obj["kind"] in ("Deployment", "StatefulSet"):
        spec = obj["spec"]
        pod = spec["template"]
        selector = spec["selector"]["matchLabels"]
        assert selector.items() <= pod["metadata"]["labels"].items()
        assert "headwater.dev/config-hash" in pod["metadata"]["annotations"]
        if obj["kind"] == "StatefulSet":
            assert len(meta["name"]) <= 52, "pod names need room for the ordinal and revision hash"
        volumes = {v["name"] for v in pod["spec"].get("volumes", [])}
        volumes |= {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        names_of_volumes = [v["name"] for v in pod["spec"].get("volumes", [])]
        assert len(names_of_volumes) == len(set(names_of_volumes)), names_of_volumes
        containers = pod["spec"]["containers"] + pod["spec"].get("initContainers", [])
        for container in containers:
            assert container["image"] and DNS_LABEL.match(container["name"])
            ports = [p["containerPort"] for p in container.get("ports", [])]
            assert len(ports) == len(set(ports))
            # env is a list map keyed by name: a duplicate makes server-side apply fail.
            env = [e["name"] for e in container.get("env", [])]
            assert len(env) == len(set(env)), env
            paths = [m["mountPath"] for m in container.get("volumeMounts", [])]
            assert len(paths) == len(set(paths)), paths
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, (obj["kind"], mount["name"])
    if obj["kind"] == "Service":
        ports = [p["port"] for p in obj["spec"]["ports"]]
        assert len(ports) == len(set(ports))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=platform_specs(), name=names, namespace=names)
def test_accepted_specs_render_valid_objects(
    spec: dict[str, Any], name: str, namespace: str
) -> None:
    model = DataPlatformSpec.model_validate(spec)  # the strategy draws accepted specs only
    owner = Owner("DataPlatform", name, namespace, "0c1c2c3c-4c5c-6c7c-8c9c-0a1a2a3a4a5a")
    objects = render_platform(model, owner, PlatformContext(new_minio_credentials=("u", "p")))
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), "duplicate objects"
    for obj in objects:
        _check_object(obj, owner)
