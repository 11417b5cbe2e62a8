#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from the
# k8s.io/kubernetes module on the Go module proxy, plus kwok and etcd, into
# $HEADWATER_CACHE/bin/<component>-<version>/. Prints the bin directories it made.
#
# k8s.io/kubernetes cannot be `go install`ed directly: its go.mod requires the staging
# modules (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and replaces them with ./staging
# paths that do not exist in the module zip. A small wrapper module requires
# k8s.io/kubernetes and replaces every such v0.0.0 requirement with the published v0.Y.Z.
source "$(dirname "$0")/lib.sh"

export CGO_ENABLED=0

k8s_bin="$HEADWATER_CACHE/bin/kubernetes-$K8S_VERSION"
kwok_bin="$HEADWATER_CACHE/bin/kwok-$KWOK_VERSION"
etcd_bin="$HEADWATER_CACHE/bin/etcd-$ETCD_VERSION"

build_kubernetes() {
  local want=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local missing=0
  for b in "${want[@]}"; do [[ -x "$k8s_bin/$b" ]] || missing=1; done
  if [[ $missing == 0 ]]; then return 0; fi

  local ver="${K8S_VERSION#v}" major minor staging
  major="${ver%%.*}"; minor="${ver#*.}"; minor="${minor%%.*}"
  staging="v0.${minor}.${ver##*.}"
  local wrap="$HEADWATER_CACHE/src/kubernetes-wrapper-$K8S_VERSION"
  mkdir -p "$wrap" "$k8s_bin.tmp"
  log "kubernetes $K8S_VERSION: preparing wrapper module (staging modules -> $staging)"
  local modfile
  modfile="$(curl -fsSL "${GOPROXY_URL:-https://proxy.golang.org}/k8s.io/kubernetes/@v/$K8S_VERSION.mod")"
  {
    echo "module headwater.dev/k8s-wrapper"
    echo
    echo "$modfile" | grep -E '^go ' | head -1
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    echo "$modfile" | awk '/^\tk8s\.io\/[a-z0-9-]+ v0\.0\.0$/ {print $1}' | sort -u |
      while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$staging"; done
    echo ")"
  } > "$wrap/go.mod"
  cat > "$wrap/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$wrap" && go mod tidy -e >/dev/null 2>&1 || true; cd "$wrap" && GOFLAGS=-mod=mod go mod download k8s.io/kubernetes)
  local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  for b in "${want[@]}"; do
    [[ -x "$k8s_bin/$b" ]] && continue
    log "kubernetes $K8S_VERSION: building $b"
    (cd "$wrap" && GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" -o "$k8s_bin.tmp/$b" "k8s.io/kubernetes/cmd/$b")
  done
  mkdir -p "$k8s_bin"
  mv "$k8s_bin.tmp"/* "$k8s_bin"/ 2>/dev/null || true
  rmdir "$k8s_bin.tmp"
}

build_kwok() {
  [[ -x "$kwok_bin/kwok" && -x "$kwok_bin/kwokctl" ]] && return 0
  log "kwok $KWOK_VERSION: go install"
  GOBIN="$kwok_bin" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

build_etcd() {
  [[ -x "$etcd_bin/etcd" ]] && return 0
  # go.etcd.io/etcd/v3 (the root module with main.go) carries replace directives, so
  # `go install` refuses it; the server itself is the go.etcd.io/etcd/server/v3 library,
  # whose etcdmain package is what etcd's own main calls. A three-line main does the same.
  local wrap="$HEADWATER_CACHE/src/etcd-wrapper-$ETCD_VERSION"
  mkdir -p "$wrap"
  cat > "$wrap/go.mod" <<MOD
module headwater.dev/etcd-wrapper

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat > "$wrap/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  log "etcd $ETCD_VERSION: building server from go.etcd.io/etcd/server/v3"
  (cd "$wrap" && GOFLAGS=-mod=mod go mod tidy && \
   go build -trimpath -ldflags "-s -w" -o "$etcd_bin.tmp/etcd" .)
  mkdir -p "$etcd_bin" && mv "$etcd_bin.tmp/etcd" "$etcd_bin/etcd" && rmdir "$etcd_bin.tmp"
}

what="${1:-all}"
case "$what" in
  kubernetes) run_locked kubernetes build_kubernetes ;;
  kwok) run_locked kwok build_kwok ;;
  etcd) run_locked etcd build_etcd ;;
  all)
    run_locked etcd build_etcd
    run_locked kwok build_kwok
    run_locked kubernetes build_kubernetes ;;
  *) echo "usage: $0 [all|kubernetes|kwok|etcd]" >&2; exit 2 ;;
esac
echo "$k8s_bin $kwok_bin $etcd_bin"
