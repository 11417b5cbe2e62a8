#!/usr/bin/env bash
# Local dev cluster without Docker: etcd + kube-apiserver + kube-controller-manager +
# kube-scheduler as plain processes, kwok simulating nodes and pods.
#   hack/cluster.sh up [--nodes N] [--wait-timeout S] | down [--purge] | status | kubeconfig
# Details, ports and timings: hack/README-cluster.md.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$REPO/operator${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m headwater.devenv.cluster "$@"
