"""Headwater: a Kubernetes operator for on-premises data pipelines."""

__version__ = "0.1.0"
