"""Fixtures of the data-plane suites (real servers from hack/services.sh); each feature keeps
its fixtures in its own tests/hwtest module and imports them here."""

from hwtest.lake import *  # noqa: F403
