"""Versions the local services share with what the operator renders stay in step."""

from __future__ import annotations

import re

from headwater.render import platform
from hwtest import ROOT


def _pinned(name: str) -> str:
    text = (ROOT / "hack" / "lib.sh").read_text()
    match = re.search(rf'^{name}="\$\{{{name}:-([^}}]+)\}}"', text, re.MULTILINE)
    assert match, f"{name} is not pinned in hack/lib.sh"
    return match.group(1)


def test_local_jmx_exporter_is_the_one_managed_pods_fetch() -> None:
    # The data-plane tests check the alert rules' metric names against this agent.
    assert _pinned("JMX_EXPORTER_VERSION") == platform.JMX_AGENT_VERSION
