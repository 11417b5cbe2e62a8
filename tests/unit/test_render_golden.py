"""Golden files of rendered manifests: every example, and every component in every mode.

A change in rendering shows up as a reviewable diff of tests/golden/. After an intended
change run `make golden` (HEADWATER_UPDATE_GOLDEN=1) and commit the new files.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from headwater.api.dataplatform import DataPlatformSpec
from headwater.constants import ANNOTATION_CONFIG_HASH
from headwater.reconcile.base import Settings
from headwater.reconcile.dataplatform import DataPlatformReconciler
from headwater.render.common import Owner
from headwater.render.platform import PlatformContext, render_platform, uses_legacy_connect_topics
from headwater.render.registry import render_offline
from hwtest import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("HEADWATER_UPDATE_GOLDEN") == "1"

EXTERNAL = {
    "kafka": {"bootstrapServers": ["kafka-0.ext:9092", "kafka-1.ext:9092"]},
    "connect": {"url": "http://connect.ext:8083"},
    "flink": {"restUrl": "http://flink.ext:8081", "sqlGatewayUrl": "http://flink.ext:8083"},
    "spark": {"masterUrl": "spark://spark.ext:7077"},
    "objectStore": {
        "endpoint": "https://s3.ext:9000",
        "credentialsSecretRef": {"name": "s3-admin"},
    },
    "monitoring": {"url": "http://prometheus.ext:9090"},
}


def _platform(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "headwater.dev/v1alpha1",
        "kind": "DataPlatform",
        "metadata": {
            "name": name,
            "namespace": "golden",
            "uid": "11111111-2222-3333-4444-555555555555",
        },
        "spec": spec,
    }


def _cases() -> dict[str, list[dict[str, Any]]]:
    cases: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for d in docs:
            d.setdefault("metadata", {}).setdefault("namespace", "shop")
            d["metadata"].setdefault("uid", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
        cases[f"example-{path.stem}"] = docs
    everything_off = {c: {"mode": "disabled"} for c in EXTERNAL}
    for component, external in EXTERNAL.items():
        for mode in ("managed", "external", "disabled"):
            spec = {**everything_off, component: {"mode": mode}}
            if component == "connect" and mode == "managed":
                spec["kafka"] = {
                    "mode": "managed",
                    "managed": {"replicas": 1, "defaultReplicationFactor": 1},
                }
            if mode == "external":
                spec[component]["external"] = external
            cases[f"{component}-{mode}"] = [_platform(f"{component.lower()}-{mode}", spec)]
    # Managed Connect on an external Kafka: SASL over TLS with a private CA, SASL without
    # TLS, and TLS alone (the security.protocol of each, and what the workers mount).
    kafka_external = {
        "sasl-tls": {
            "credentialsSecretRef": {"name": "kafka-user", "passwordKey": "pass"},
            "saslMechanism": "SCRAM-SHA-512",
            "tls": {"enabled": True, "caSecretRef": {"name": "kafka-ca", "key": "ca.pem"}},
        },
        "sasl-plain": {"credentialsSecretRef": {"name": "kafka-user"}, "saslMechanism": "PLAIN"},
        "tls": {"tls": {"enabled": True, "insecureSkipVerify": True}},
    }
    for variant, security in kafka_external.items():
        spec = {
            **everything_off,
            "connect": {"mode": "managed"},
            "kafka": {"mode": "external", "external": {**EXTERNAL["kafka"], **security}},
        }
        name = f"connect-managed-kafka-external-{variant}"
        cases[name] = [_platform(name, spec)]
    # Every override the managed MinIO and Prometheus take.
    cases["objectStore-managed-overrides"] = [
        _platform(
            "objectstore-overrides",
            {
                **everything_off,
                "objectStore": {
                    "mode": "managed",
                    "managed": {
                        "version": "RELEASE.2025-10-15T17-29-55Z",
                        "image": "quay.io/minio/minio:RELEASE.2025-10-15T17-29-55Z",
                        "config": {"MINIO_API_REQUESTS_MAX": "1600", "MINIO_REGION": "eu-1"},
                    },
                },
            },
        )
    ]
    cases["monitoring-managed-overrides"] = [
        _platform(
            "monitoring-overrides",
            {
                **everything_off,
                "monitoring": {
                    "mode": "managed",
                    "managed": {
                        "version": "3.8.0",
                        "image": "prom/prometheus:v3.8.0",
                        "config": {
                            "storage.tsdb.retention.size": "50GB",
                            "storage.tsdb.retention.time": "30d",
                            "web.enable-admin-api": "true",
                            "web.enable-lifecycle": "true",
                        },
                    },
                },
            },
        )
    ]
    return cases


CASES = _cases()
EXAMPLE_DOCS = [d for name, docs in CASES.items() if name.startswith("example-") for d in docs]


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_matches_golden(name: str) -> None:
    docs = CASES[name]
    # Examples render with the whole example pipeline as context (like `headwater render -f
    # manifests/examples/...`): a CdcConnector's config needs its DataSource and platform.
    context = EXAMPLE_DOCS if name.startswith("example-") else docs
    objects = [o for doc in docs for o in render_offline(doc, context)]
    text = yaml.safe_dump_all(objects, sort_keys=True, width=120) if objects else "# no objects\n"
    path = GOLDEN / f"{name}.yaml"
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"golden file {path.name} was missing and has been written; commit it")
    assert text == path.read_text(), f"render of {name} changed: review, then `make golden`"


def test_every_managed_component_renders_workloads() -> None:
    kinds = {
        "kafka-managed": {"StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget"},
        "connect-managed": {"Deployment", "Service", "ConfigMap"},
        "flink-managed": {"Deployment", "Service", "ConfigMap"},
        "spark-managed": {"ServiceAccount", "Role", "RoleBinding"},
        "objectStore-managed": {"StatefulSet", "Service", "Secret"},
        "monitoring-managed": {"Deployment", "Service", "ConfigMap"},
    }
    for name, expected in kinds.items():
        rendered = {o["kind"] for doc in CASES[name] for o in render_offline(doc)}
        assert expected <= rendered, (name, expected - rendered)


@pytest.mark.parametrize("component", sorted(EXTERNAL))
def test_external_and_disabled_render_nothing_of_their_own(component: str) -> None:
    for mode in ("external", "disabled"):
        objs = [o for doc in CASES[f"{component}-{mode}"] for o in render_offline(doc)]
        owned = [
            o for o in objs if o["metadata"]["labels"]["app.kubernetes.io/component"] == component
        ]
        assert owned == [], f"{component} {mode} rendered {[o['metadata']['name'] for o in owned]}"


def test_golden_dir_has_no_orphans() -> None:
    orphans = {p.stem for p in Path(GOLDEN).glob("*.yaml")} - set(CASES)
    assert not orphans, f"golden files without a case: {sorted(orphans)}"


# --- what the golden files cannot say on their own --------------------------------------------


def _objects(name: str, spec: dict[str, Any], namespace: str = "golden") -> list[dict[str, Any]]:
    doc = _platform(name, spec)
    doc["metadata"]["namespace"] = namespace
    return render_offline(doc)


def _one(objs: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"].endswith(suffix))


def _worker_properties(objs: list[dict[str, Any]]) -> dict[str, str]:
    text = _one(objs, "ConfigMap", "-connect-config")["data"]["connect-distributed.properties"]
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def _connect_on(external: dict[str, Any]) -> list[dict[str, Any]]:
    spec = {
        **{c: {"mode": "disabled"} for c in EXTERNAL},
        "connect": {"mode": "managed"},
        "kafka": {"mode": "external", "external": {**EXTERNAL["kafka"], **external}},
    }
    return _objects("p", spec)


@pytest.mark.parametrize(
    ("external", "protocol"),
    [
        ({}, None),
        ({"tls": {"enabled": True}}, "SSL"),
        ({"credentialsSecretRef": {"name": "u"}}, "SASL_PLAINTEXT"),
        ({"credentialsSecretRef": {"name": "u"}, "tls": {"enabled": True}}, "SASL_SSL"),
    ],
)
def test_connect_speaks_the_external_kafka_security_protocol(
    external: dict[str, Any], protocol: str | None
) -> None:
    props = _worker_properties(_connect_on(external))
    # The worker's own clients, the connectors' producers and consumers, and the admin
    # clients that create topics all reach the same brokers the same way.
    for prefix in ("", "producer.", "consumer.", "admin."):
        assert props.get(prefix + "security.protocol") == protocol, prefix
        assert (prefix + "sasl.jaas.config" in props) == ("credentialsSecretRef" in external)


@pytest.mark.parametrize(
    ("mechanism", "module"),
    [
        ("PLAIN", "org.apache.kafka.common.security.plain.PlainLoginModule"),
        ("SCRAM-SHA-256", "org.apache.kafka.common.security.scram.ScramLoginModule"),
        ("SCRAM-SHA-512", "org.apache.kafka.common.security.scram.ScramLoginModule"),
    ],
)
def test_kafka_credentials_reach_connect_only_through_the_environment(
    mechanism: str, module: str
) -> None:
    ref = {"name": "kafka-user", "usernameKey": "user", "passwordKey": "pass"}
    objs = _connect_on({"credentialsSecretRef": ref, "saslMechanism": mechanism})
    props = _worker_properties(objs)
    assert props["sasl.mechanism"] == props["producer.sasl.mechanism"] == mechanism
    assert props["sasl.jaas.config"] == (
        f'{module} required username="${{env:HEADWATER_KAFKA_USERNAME}}" '
        'password="${env:HEADWATER_KAFKA_PASSWORD}";'
    )
    # The values come from the user's Secret through secretKeyRef, never as text.
    container = _one(objs, "Deployment", "-connect")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["HEADWATER_KAFKA_USERNAME"]["valueFrom"] == {
        "secretKeyRef": {"name": "kafka-user", "key": "user"}
    }
    assert env["HEADWATER_KAFKA_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "kafka-user", "key": "pass"}
    }
    assert all("value" not in e for e in env.values() if e["name"].startswith("HEADWATER_KAFKA"))


def test_kafka_ca_is_mounted_as_a_pem_trust_store() -> None:
    tls = {"enabled": True, "caSecretRef": {"name": "kafka-ca", "key": "ca.pem"}}
    objs = _connect_on({"tls": tls})
    props = _worker_properties(objs)
    for prefix in ("", "producer.", "consumer.", "admin."):
        assert props[prefix + "ssl.truststore.type"] == "PEM"
        assert props[prefix + "ssl.truststore.location"] == "/opt/headwater/kafka-ca/ca.crt"
    pod = _one(objs, "Deployment", "-connect")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["kafka-ca"]["secret"] == {
        "secretName": "kafka-ca",
        "items": [{"key": "ca.pem", "path": "ca.crt"}],
    }
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["kafka-ca"] == {
        "name": "kafka-ca",
        "mountPath": "/opt/headwater/kafka-ca",
        "readOnly": True,
    }
    # Without TLS a CA means nothing: no trust store, no mount.
    plain = _connect_on({"tls": {**tls, "enabled": False}})
    assert "ssl.truststore.location" not in _worker_properties(plain)
    assert "kafka-ca" not in str(_one(plain, "Deployment", "-connect"))


def test_connect_workers_restart_when_kafka_credentials_or_ca_change() -> None:
    """Environment and trust store are read once, at start: a new Secret version must roll."""
    spec = DataPlatformSpec.model_validate(
        {
            **{c: {"mode": "disabled"} for c in EXTERNAL},
            "connect": {"mode": "managed"},
            "kafka": {
                "mode": "external",
                "external": {
                    **EXTERNAL["kafka"],
                    "credentialsSecretRef": {"name": "kafka-user"},
                    "tls": {"enabled": True, "caSecretRef": {"name": "kafka-ca", "key": "ca"}},
                },
            },
        }
    )
    owner = Owner("DataPlatform", "p", "golden", "11111111-2222-3333-4444-555555555555")

    def connect_hash(versions: dict[str, str]) -> str:
        objs = render_platform(spec, owner, PlatformContext(secret_versions=versions))
        return str(
            _one(objs, "Deployment", "-connect")["spec"]["template"]["metadata"]["annotations"][
                ANNOTATION_CONFIG_HASH
            ]
        )

    base = connect_hash({"kafka-user": "1", "kafka-ca": "1"})
    assert connect_hash({"kafka-user": "1", "kafka-ca": "1"}) == base
    assert connect_hash({"kafka-user": "2", "kafka-ca": "1"}) != base
    assert connect_hash({"kafka-user": "1", "kafka-ca": "2"}) != base


def test_only_connect_talks_to_an_external_kafka() -> None:
    """The consumer-lag exporter runs beside a managed Kafka only (its alert rules scope
    managed components); nothing else the platform runs gets Kafka client settings."""
    spec = {
        **{c: {"mode": "managed"} for c in EXTERNAL},
        "kafka": {
            "mode": "external",
            "external": {**EXTERNAL["kafka"], "credentialsSecretRef": {"name": "kafka-user"}},
        },
    }
    objs = _objects("p", spec)
    users = {
        o["metadata"]["labels"]["app.kubernetes.io/component"]
        for o in objs
        if "kafka-user" in str(o) or "kafka-0.ext" in str(o)
    }
    assert users == {"connect"}
    assert not [o for o in objs if "kafka-exporter" in o["metadata"]["name"]]


def test_connect_internal_topics_carry_the_namespace() -> None:
    """Two platforms of the same name in two namespaces may share one external Kafka."""
    spec = {
        **{c: {"mode": "disabled"} for c in EXTERNAL},
        "connect": {"mode": "managed"},
        "kafka": {"mode": "external", "external": EXTERNAL["kafka"]},
    }
    a, b = (_worker_properties(_objects("shop", spec, ns)) for ns in ("team-a", "team-b"))
    keys = ("group.id", "config.storage.topic", "offset.storage.topic", "status.storage.topic")
    assert all(a[k] != b[k] for k in keys)
    assert a["offset.storage.topic"] == "team-a.shop.connect-offsets"


def test_connect_created_by_0_1_keeps_its_internal_topics() -> None:
    """They hold the connectors' source offsets: renaming them would re-snapshot every
    source. The reconciler reads the live worker config and renders the old names again."""
    owner = Owner("DataPlatform", "shop", "team-a", "11111111-2222-3333-4444-555555555555")
    legacy_cm = {"data": {"connect-distributed.properties": _LEGACY_WORKER}}
    assert uses_legacy_connect_topics(owner, legacy_cm)
    assert not uses_legacy_connect_topics(owner, None)
    spec = DataPlatformSpec.model_validate({"kafka": {"managed": {"replicas": 1}}})
    current = _one(render_platform(spec, owner), "ConfigMap", "-connect-config")
    assert not uses_legacy_connect_topics(owner, current)
    legacy = render_platform(spec, owner, PlatformContext(connect_legacy_topics=True))
    props = _worker_properties(legacy)
    assert props["offset.storage.topic"] == "shop-connect-offsets"
    assert props["config.storage.topic"] == "shop-connect-configs"
    assert props["status.storage.topic"] == "shop-connect-status"
    # Stays legacy on the next pass, once the ConfigMap was written with the old names.
    assert uses_legacy_connect_topics(owner, _one(legacy, "ConfigMap", "-connect-config"))


# What 0.1 rendered (abridged): the topics without the namespace.
_LEGACY_WORKER = (
    "bootstrap.servers=shop-kafka.team-a.svc:9092\n"
    "config.storage.topic=shop-connect-configs\n"
    "group.id=team-a.shop.connect\n"
    "offset.storage.topic=shop-connect-offsets\n"
    "status.storage.topic=shop-connect-status\n"
)


def test_kafka_cluster_id_survives_recreating_the_platform() -> None:
    """The log volumes outlive the CR: a re-created platform (new uid) must use the id the
    volumes were formatted with, and another platform must not."""

    def cluster_id(namespace: str, name: str, uid: str) -> str:
        doc = _platform(name, {"kafka": {"managed": {"replicas": 1}}})
        doc["metadata"].update(namespace=namespace, uid=uid)
        sts = _one(render_offline(doc), "StatefulSet", "-kafka")
        env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
        return str(next(e["value"] for e in env if e["name"] == "KAFKA_CLUSTER_ID"))

    first = cluster_id("shop", "lake", "11111111-2222-3333-4444-555555555555")
    assert first == cluster_id("shop", "lake", "99999999-8888-7777-6666-555555555555")
    assert first != cluster_id("shop", "other", "11111111-2222-3333-4444-555555555555")
    assert first != cluster_id("other", "lake", "11111111-2222-3333-4444-555555555555")
    # A KRaft cluster id is 16 bytes, url-safe base64 without padding.
    assert len(base64.urlsafe_b64decode(first + "==")) == 16


def test_flink_runs_as_the_image_user_with_writable_conf() -> None:
    objs = _objects(
        "p", {**{c: {"mode": "disabled"} for c in EXTERNAL}, "flink": {"mode": "managed"}}
    )
    workloads = [o for o in objs if o["kind"] == "Deployment"]
    assert len(workloads) == 2
    for deployment in workloads:
        pod = deployment["spec"]["template"]["spec"]
        # The official image's user flink (9999) owns /opt/flink: the entrypoint links the
        # S3 plugin into /opt/flink/plugins, which another uid may not write.
        assert pod["securityContext"]["runAsUser"] == 9999
        assert pod["securityContext"]["runAsGroup"] == 9999
        assert pod["securityContext"]["fsGroup"] == 9999
        volumes = {v["name"]: v for v in pod["volumes"]}
        (init,) = pod["initContainers"]
        filled = {m["name"] for m in init["volumeMounts"] if m["mountPath"].startswith("/work/")}
        for container in pod["containers"]:
            (conf,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/opt/flink/conf"]
            # Writable (the entrypoint rewrites config.yaml), filled with the image's files.
            assert volumes[conf["name"]] == {"name": conf["name"], "emptyDir": {}}
            assert conf["name"] in filled
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["JOB_MANAGER_RPC_ADDRESS"] == "p-flink-jobmanager"
        # Each container its own copy: the JobManager's entrypoint rewrites its file.
        confs = [
            m["name"]
            for c in pod["containers"]
            for m in c["volumeMounts"]
            if m["mountPath"] == "/opt/flink/conf"
        ]
        assert len(confs) == len(set(confs))


def test_minio_and_prometheus_overrides_reach_their_pods() -> None:
    objs = CASES["objectStore-managed-overrides"] + CASES["monitoring-managed-overrides"]
    rendered = [o for doc in objs for o in render_offline(doc)]
    minio = _one(rendered, "StatefulSet", "-minio")
    env = {
        e["name"]: e.get("value") for e in minio["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MINIO_API_REQUESTS_MAX"] == "1600"
    assert env["MINIO_REGION"] == "eu-1"  # config wins over `region`
    assert (
        minio["metadata"]["labels"]["app.kubernetes.io/version"] == "RELEASE.2025-10-15T17-29-55Z"
    )
    prom = _one(rendered, "Deployment", "-prometheus")
    args = prom["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--storage.tsdb.retention.size=50GB" in args
    assert (
        "--storage.tsdb.retention.time=30d" in args
        and "--storage.tsdb.retention.time=15d" not in args
    )
    # Prometheus refuses `--flag=true`: booleans are bare flags.
    assert "--web.enable-admin-api" in args and "--web.enable-lifecycle" in args
    assert prom["metadata"]["labels"]["app.kubernetes.io/version"] == "3.8.0"


def test_minio_pods_do_not_roll_once_their_root_secret_exists() -> None:
    """First pass: the Secret is rendered (created) with new credentials. Next passes read
    it back with a resourceVersion. The servers' config hash must not tell them apart, or
    the new pods roll right after creation; a replaced Secret must still roll them."""
    spec = DataPlatformSpec.model_validate(
        {**{c: {"mode": "disabled"} for c in EXTERNAL}, "objectStore": {"mode": "managed"}}
    )
    owner = Owner("DataPlatform", "p", "golden", "11111111-2222-3333-4444-555555555555")
    created = _reconcile_pass(spec, owner, secret=None)
    secret = _one(created, "Secret", "-minio-root")
    assert set(secret["stringData"]) == {"accessKey", "secretKey"}
    stored = {
        "metadata": {"name": secret["metadata"]["name"], "resourceVersion": "4711"},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in secret["stringData"].items()},
    }
    again = _reconcile_pass(spec, owner, secret=stored)
    assert not [o for o in again if o["kind"] == "Secret"], "the root Secret is created once"
    assert _minio_hash(again) == _minio_hash(created)
    stored["metadata"]["resourceVersion"] = "4712"  # relabelled, same credentials
    assert _minio_hash(_reconcile_pass(spec, owner, secret=stored)) == _minio_hash(created)
    replaced = {
        **stored,
        "data": {**stored["data"], "secretKey": base64.b64encode(b"new").decode()},
    }
    assert _minio_hash(_reconcile_pass(spec, owner, secret=replaced)) != _minio_hash(created)


def _minio_hash(objs: list[dict[str, Any]]) -> str:
    sts = _one(objs, "StatefulSet", "-minio")
    return str(sts["spec"]["template"]["metadata"]["annotations"][ANNOTATION_CONFIG_HASH])


def _reconcile_pass(
    spec: DataPlatformSpec, owner: Owner, secret: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """What DataPlatformReconciler.reconcile applies in one pass, given the live root Secret
    (the reconciler runs for real; only its cache and apply layer are stand-ins)."""
    applied: list[dict[str, Any]] = []

    class Cache:
        def get(self, api_version: str, kind: str, ns: str, name: str) -> Any:
            if kind == "Secret" and secret is not None and name == secret["metadata"]["name"]:
                return secret
            return None

        def secret(self, ns: str, name: str) -> Any:
            return self.get("v1", "Secret", ns, name)

    class Applier:
        async def reconcile(self, owner: Owner, objects: list[dict[str, Any]]) -> None:
            applied.extend(objects)

    cache = Cache()
    ctx = SimpleNamespace(
        cache=cache,
        applier=Applier(),
        secret=cache.secret,
        services={},
        settings=Settings(),
    )
    body = {
        "apiVersion": "headwater.dev/v1alpha1",
        "kind": "DataPlatform",
        "metadata": {"name": owner.name, "namespace": owner.namespace, "uid": owner.uid},
        "spec": spec.wire(),
    }
    reconciler = DataPlatformReconciler(probe_external=False)
    asyncio.run(reconciler.reconcile(body, ctx))  # type: ignore[arg-type]
    return applied
