"""Fixtures of the data-plane suites (real servers from hack/services.sh); each feature keeps
its fixtures in its own tests/hwtest module and imports them here."""

from hwtest.cdc import cdc_services, connect, dedicated_connect, maria, pg, secrets_dir  # noqa: F401
from hwtest.lake import *  # noqa: F403
