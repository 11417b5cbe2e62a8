"""Local development Kubernetes cluster for Headwater, without Docker.

A real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler)
runs as plain processes built from source, and kwok simulates the nodes and pods, so
the operator can be exercised end to end on a laptop or a CI box with two cores.

The public surface is small on purpose so that ``headwater dev up|down|status`` can
wrap it: :func:`up`, :func:`down`, :func:`status`, :func:`kubeconfig_path` and the
argv-style :func:`main`.

The names are resolved lazily: ``python -m headwater.devenv.cluster`` would otherwise
import ``cluster`` twice (once through this package, once as ``__main__``) and runpy
warns about exactly that.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headwater.devenv.cluster import (
        ClusterError,
        ClusterStatus,
        down,
        kubeconfig_path,
        main,
        status,
        up,
    )

__all__ = [
    "ClusterError",
    "ClusterStatus",
    "down",
    "kubeconfig_path",
    "main",
    "status",
    "up",
]


def __getattr__(name: str) -> Any:
    """Import :mod:`headwater.devenv.cluster` on first use of a public name."""
    if name in __all__:
        return getattr(importlib.import_module("headwater.devenv.cluster"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
