"""StreamJob (engine spark) -> the Kubernetes objects that run it.

* `mode: batch`, no schedule: one `batch/v1` Job whose pod runs `spark-submit --deploy-mode
  cluster` (the driver becomes its own pod, created with the platform's Spark ServiceAccount;
  `waitAppCompletion` makes the Job succeed or fail with the application). A Job's pod
  template is immutable, so the Job name carries a hash of what it runs: a spec change
  creates a new Job and the old one is pruned; an unchanged spec never re-runs.
* `schedule`: a CronJob with the same Job template (concurrency policy, history limits,
  time zone; `state: suspended` sets `suspend`). Jobs it spawns carry `managed-by` (so the
  operator's cache sees them for status) but no owner inventory labels (so the apply layer
  never prunes them; the CronJob's own history limits and owner references do).
* `mode: streaming`: a one-replica Deployment (strategy Recreate: never two drivers writing
  the same checkpoints) whose pod *is* the driver (`--deploy-mode client`). Kubernetes
  restarts it when it dies and executors are owned by the driver pod, so they go with it. A
  Job would give up after backoffLimit and a cluster-mode submitter pod would leave an
  orphaned driver behind when it restarts.

Credentials never appear in the command line: S3 keys reach driver and executors as
environment variables from the platform's Secret (`secretKeyRef`). In cluster mode Spark puts
them on the pods it creates (`spark.kubernetes.{driver,executor}.secretKeyRef.*`); in client
mode (streaming) the driver pod is ours and Spark ignores the driver setting, so its
container gets them as `env` here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..api.streamjob import SparkJobSpec, StreamJobSpec
from ..constants import LABEL_MANAGED_BY, LABEL_NAME, LABEL_PART_OF, LABEL_STREAMJOB, MANAGED_BY
from .common import (
    Obj,
    Owner,
    container_security_context,
    finalize,
    pod_labels,
    pod_security_context,
    selector_labels,
    stable_hash,
)

SPARK_SUBMIT = "/opt/spark/bin/spark-submit"
COMPONENT = "spark-job"
DRIVER_PORT = 7078
BLOCK_MANAGER_PORT = 7079


@dataclass(frozen=True)
class SparkFacts:
    """What the reconciler looked up on the platform (render does no I/O)."""

    master_url: str
    service_account: str
    image: str
    s3_endpoint: str | None = None
    s3_secret: str | None = None
    s3_access_key_key: str = "accessKey"
    s3_secret_key_key: str = "secretKey"
    s3_path_style: bool = True


@dataclass(frozen=True)
class SparkNames:
    owner: str

    @property
    def cronjob(self) -> str:
        return self.owner

    def job(self, digest: str) -> str:
        return f"{self.owner[:52]}-{digest[:10]}"

    @property
    def driver(self) -> str:
        return f"{self.owner[:56]}-driver"


def app_name(owner: Owner) -> str:
    """spark.app.name and the driver pod prefix: namespace and name, DNS-safe."""
    return f"{owner.namespace}-{owner.name}"[:60].strip("-")


def _conf(spark: SparkJobSpec, owner: Owner, facts: SparkFacts, image: str) -> dict[str, str]:
    conf: dict[str, str] = {
        "spark.app.name": app_name(owner),
        "spark.kubernetes.namespace": owner.namespace,
        "spark.kubernetes.container.image": image,
        "spark.kubernetes.authenticate.driver.serviceAccountName": facts.service_account,
        "spark.driver.cores": str(spark.driver.cores),
        "spark.driver.memory": spark.driver.memory,
        "spark.executor.instances": str(spark.executor.instances),
        "spark.executor.cores": str(spark.executor.cores),
        "spark.executor.memory": spark.executor.memory,
        f"spark.kubernetes.driver.label.{LABEL_STREAMJOB}": owner.name,
        f"spark.kubernetes.executor.label.{LABEL_STREAMJOB}": owner.name,
        f"spark.kubernetes.driver.label.{LABEL_MANAGED_BY}": MANAGED_BY,
        f"spark.kubernetes.executor.label.{LABEL_MANAGED_BY}": MANAGED_BY,
    }
    if spark.mode == "batch":
        conf["spark.kubernetes.submission.waitAppCompletion"] = "true"
    if facts.s3_endpoint and facts.s3_secret:
        conf["spark.hadoop.fs.s3a.endpoint"] = facts.s3_endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = str(facts.s3_path_style).lower()
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
            "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"
        )
        # Client mode (streaming): Spark creates only the executors; the driver's keys are
        # in the Deployment's container (`_s3_env`).
        roles = ("driver", "executor") if spark.mode == "batch" else ("executor",)
        for role in roles:
            conf[f"spark.kubernetes.{role}.secretKeyRef.AWS_ACCESS_KEY_ID"] = (
                f"{facts.s3_secret}:{facts.s3_access_key_key}"
            )
            conf[f"spark.kubernetes.{role}.secretKeyRef.AWS_SECRET_ACCESS_KEY"] = (
                f"{facts.s3_secret}:{facts.s3_secret_key_key}"
            )
    if spark.mode == "streaming":
        # Client mode inside the Deployment's pod: executors reach the driver on its pod IP
        # and are owned by the driver pod (garbage-collected when it is replaced).
        conf["spark.kubernetes.driver.pod.name"] = "$(POD_NAME)"
        conf["spark.driver.host"] = "$(POD_IP)"
        conf["spark.driver.bindAddress"] = "0.0.0.0"
        conf["spark.driver.port"] = str(DRIVER_PORT)
        conf["spark.driver.blockManager.port"] = str(BLOCK_MANAGER_PORT)
    conf.update(spark.conf)  # the user's entries win (credential keys are refused by the API)
    return conf


def spark_submit_args(spec: StreamJobSpec, owner: Owner, facts: SparkFacts) -> list[str]:
    """The arguments after `spark-submit`: options, --conf pairs (sorted), file, app args."""
    spark = spec.spark
    assert spark is not None
    image = spark.image or facts.image
    args = [
        "--master",
        facts.master_url,
        "--deploy-mode",
        "cluster" if spark.mode == "batch" else "client",
        "--name",
        app_name(owner),
    ]
    if spark.application.type == "jvm" and spark.application.main_class:
        args += ["--class", spark.application.main_class]
    for key, value in sorted(_conf(spark, owner, facts, image).items()):
        args += ["--conf", f"{key}={value}"]
    return [*args, spark.application.file, *spark.application.args]


def _container(spec: StreamJobSpec, owner: Owner, facts: SparkFacts) -> Obj:
    spark = spec.spark
    assert spark is not None
    container: Obj = {
        "name": "spark-submit",
        "image": spark.image or facts.image,
        "command": [SPARK_SUBMIT],
        "args": spark_submit_args(spec, owner, facts),
        "securityContext": container_security_context(read_only_root=False),
    }
    if spark.mode == "streaming":
        container["env"] = [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            *_s3_env(facts),
        ]
        container["ports"] = [
            {"name": "driver", "containerPort": DRIVER_PORT},
            {"name": "blockmanager", "containerPort": BLOCK_MANAGER_PORT},
            {"name": "ui", "containerPort": 4040},
        ]
        container["resources"] = {
            "requests": {"cpu": str(spark.driver.cores), "memory": _k8s_memory(spark.driver.memory)}
        }
    return container


def _s3_env(facts: SparkFacts) -> list[Obj]:
    """The S3 keys of a client-mode driver, referenced from the platform's Secret (the same
    variables the executors get through `spark.kubernetes.executor.secretKeyRef.*`)."""
    if not (facts.s3_endpoint and facts.s3_secret):
        return []
    return [
        {
            "name": variable,
            "valueFrom": {"secretKeyRef": {"name": facts.s3_secret, "key": key}},
        }
        for variable, key in (
            ("AWS_ACCESS_KEY_ID", facts.s3_access_key_key),
            ("AWS_SECRET_ACCESS_KEY", facts.s3_secret_key_key),
        )
    ]


def _k8s_memory(jvm: str) -> str:
    """`2g` -> `2Gi` plus Spark's default 10% overhead (min 384 MiB) for the pod request."""
    unit = jvm[-1].lower() if jvm[-1].isalpha() else ""
    number = int(jvm[:-1] if unit else jvm)
    mib = {"k": number / 1024, "m": number, "g": number * 1024, "": number / (1024 * 1024)}[unit]
    return f"{int(mib + max(384, mib * 0.1))}Mi"


def _pod_spec(spec: StreamJobSpec, owner: Owner, facts: SparkFacts, restart: str) -> Obj:
    return {
        "serviceAccountName": facts.service_account,
        "restartPolicy": restart,
        "securityContext": pod_security_context(uid=185, fs_group=185),
        "containers": [_container(spec, owner, facts)],
    }


def _spawned_labels(owner: Owner) -> dict[str, str]:
    """Labels of Jobs/pods a CronJob spawns: visible to the cache, never pruned by the applier."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_PART_OF: "headwater",
        LABEL_NAME: COMPONENT,
        LABEL_STREAMJOB: owner.name,
    }


def _job_spec(spec: StreamJobSpec, owner: Owner, facts: SparkFacts, labels: dict[str, str]) -> Obj:
    spark = spec.spark
    assert spark is not None
    return {
        "backoffLimit": spark.backoff_limit,
        "template": {
            "metadata": {"labels": labels},
            "spec": _pod_spec(spec, owner, facts, "Never"),
        },
    }


def run_digest(spec: StreamJobSpec, facts: SparkFacts) -> str:
    """Hash of what a batch run executes: the one-shot Job's name carries it."""
    spark = spec.spark
    assert spark is not None
    return stable_hash(spark.model_dump(mode="json"), facts.__dict__)


def render_spark(spec: StreamJobSpec, owner: Owner, facts: SparkFacts) -> list[Obj]:
    """Every Kubernetes object of a Spark StreamJob (complete desired set)."""
    spark = spec.spark
    if spark is None:
        return []
    names = SparkNames(owner.name)
    suspended = spec.state == "suspended"
    if spark.mode == "streaming":
        selector = selector_labels(owner, COMPONENT)
        labels = {**pod_labels(owner, COMPONENT), LABEL_STREAMJOB: owner.name}
        obj: Obj = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": names.driver},
            "spec": {
                "replicas": 0 if suspended else 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": _pod_spec(spec, owner, facts, "Always"),
                },
            },
        }
    elif spark.schedule:
        cron: Obj = {
            "schedule": spark.schedule,
            "concurrencyPolicy": spark.concurrency_policy,
            "successfulJobsHistoryLimit": spark.successful_jobs_history_limit,
            "failedJobsHistoryLimit": spark.failed_jobs_history_limit,
            "suspend": suspended,
            # A missed run (operator or controller down) still starts within 5 minutes.
            "startingDeadlineSeconds": 300,
            "jobTemplate": {
                "metadata": {"labels": _spawned_labels(owner)},
                "spec": _job_spec(spec, owner, facts, _spawned_labels(owner)),
            },
        }
        if spark.time_zone:
            cron["timeZone"] = spark.time_zone
        obj = {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": names.cronjob},
            "spec": cron,
        }
    else:
        if suspended:
            return []  # a one-shot run that is suspended: nothing to run
        labels = {**pod_labels(owner, COMPONENT), LABEL_STREAMJOB: owner.name}
        obj = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": names.job(run_digest(spec, facts))},
            "spec": _job_spec(spec, owner, facts, labels),
        }
    obj["metadata"].setdefault("labels", {})[LABEL_STREAMJOB] = owner.name
    return [finalize(obj, owner, COMPONENT)]


def offline_facts(platform: str, namespace: str) -> SparkFacts:
    """Facts of a default (all managed) platform, for `headwater render` without a cluster."""
    from ..api.dataplatform import DataPlatformSpec
    from .platform import endpoints

    spec = DataPlatformSpec()
    eps = endpoints(spec, Owner("DataPlatform", platform, namespace, ""))
    return SparkFacts(
        master_url=str(eps["sparkMasterUrl"]),
        service_account=str(eps["sparkServiceAccount"]),
        image=spec.spark.managed.image,
        s3_endpoint=eps.get("s3Endpoint"),
        s3_secret=eps.get("s3CredentialsSecret"),
    )


def render_streamjob_offline(doc: Obj, owner: Owner) -> list[Obj]:
    """What `headwater render` prints for a StreamJob, assuming a default managed platform:
    the Spark objects, or the Flink submission document."""
    from ..api.dataplatform import DataPlatformSpec
    from .flinkapp import FlinkFacts, render_submission

    spec = StreamJobSpec.model_validate(doc.get("spec") or {})
    if spec.engine == "spark":
        return render_spark(spec, owner, offline_facts(spec.platform_ref.name, owner.namespace))
    bucket = DataPlatformSpec().object_store.checkpoint_bucket
    return [render_submission(spec, owner, FlinkFacts(checkpoint_bucket=bucket))]
