#!/usr/bin/env bash
# Vendor what tests/chart/test_keda.py checks the chart's ScaledObject against, from one
# released KEDA: its ScaledObject CRD (which types the object but not a trigger's metadata)
# and the metadata names its aws-sqs-queue and cpu scalers read (their `keda:"name=..."`
# tags). Both come from the Go module github.com/kedacore/keda/v2 through the module proxy,
# so the fixtures name exactly the release they were taken from.
#
# Usage: scripts/keda-crd.sh [VERSION]    # default v2.21.1; a new one rewrites both fixtures
# Env:   KEDA_GOPROXY (default https://proxy.golang.org)
set -euo pipefail

VERSION=${1:-v2.21.1}
PROXY=${KEDA_GOPROXY:-https://proxy.golang.org}
MODULE=github.com/kedacore/keda/v2
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT="$REPO/tests/chart/fixtures"
CRD="$OUT/keda.sh_scaledobjects.yaml"
METADATA="$OUT/keda-scaler-metadata.txt"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL "$PROXY/$MODULE/@v/$VERSION.zip" -o "$work/keda.zip"
root="$MODULE@$VERSION"

{
  echo "# KEDA's ScaledObject CRD from the Go module $MODULE@$VERSION,"
  echo "# config/crd/bases/keda.sh_scaledobjects.yaml. Written by scripts/keda-crd.sh: do not edit."
  unzip -p "$work/keda.zip" "$root/config/crd/bases/keda.sh_scaledobjects.yaml"
} >"$CRD"

# One "<trigger type> <metadata name>" line per tag of the scaler's metadata struct.
names() {
  unzip -p "$work/keda.zip" "$root/pkg/scalers/$2" \
    | sed -n 's/.*`keda:"name=\([A-Za-z0-9]*\).*/\1/p' \
    | sed "s/^/$1 /"
}
{
  echo "# Trigger metadata each scaler reads (its keda:\"name=...\" tags), from the Go module"
  echo "# $MODULE@$VERSION, pkg/scalers/. Written by scripts/keda-crd.sh: do not edit."
  names aws-sqs-queue aws_sqs_queue_scaler.go
  names cpu cpu_memory_scaler.go
} >"$METADATA"

echo "keda-crd: wrote ${CRD#"$REPO"/} and ${METADATA#"$REPO"/} from $MODULE@$VERSION" >&2
