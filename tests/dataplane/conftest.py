"""Fixtures of the data-plane suites (real servers from hack/services.sh); each feature keeps
its fixtures in its own tests/hwtest module and imports them here."""

from hwtest.cdc import cdc_services, connect, dedicated_connect, maria, pg, secrets_dir  # noqa: F401
from hwtest.flink import flink, flink_dir, flink_rest, sj_kafka, sj_topic  # noqa: F401
from hwtest.lake import *  # noqa: F403
