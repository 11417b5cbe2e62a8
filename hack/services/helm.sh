# Helm 3 CLI built from the Go module proxy. Sourced by hack/services.sh. Install only.

HELM_BIN_DIR="$HEADWATER_CACHE/bin/helm-$HELM_VERSION"

helm_install() {
  [[ -x "$HELM_BIN_DIR/helm" ]] && return 0
  local t0=$SECONDS
  # Helm's Makefile stamps the version and the default Kubernetes version (what
  # `helm template`/`lint` assume as .Capabilities.KubeVersion without a cluster) with
  # -X flags; a plain `go install` would report "v3.22" and Kubernetes 1.20. We stamp the
  # Kubernetes minor we actually run (K8S_VERSION), not the client-go minor the
  # Makefile would derive, so charts are rendered for the cluster the tests use.
  local kver="${K8S_VERSION#v}" major minor
  major="${kver%%.*}"; minor="${kver#*.}"; minor="${minor%%.*}"
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ld+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local pkg
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ld+=" -X $pkg.k8sVersionMajor=$major -X $pkg.k8sVersionMinor=$minor"
  done
  log "helm $HELM_VERSION: go install helm.sh/helm/v3/cmd/helm (Kubernetes default $major.$minor)"
  mkdir -p "$HELM_BIN_DIR.tmp"
  CGO_ENABLED=0 GOBIN="$HELM_BIN_DIR.tmp" GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
    go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mkdir -p "$HELM_BIN_DIR"
  mv "$HELM_BIN_DIR.tmp/helm" "$HELM_BIN_DIR/helm"
  rmdir "$HELM_BIN_DIR.tmp"
  log "helm $HELM_VERSION: built in $((SECONDS - t0))s ($(du -sh "$HELM_BIN_DIR" | cut -f1))"
}

helm_status() { [[ -x "$HELM_BIN_DIR/helm" ]]; }
helm_env() { echo "HELM=$HELM_BIN_DIR/helm"; }
