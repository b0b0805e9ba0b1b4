#!/usr/bin/env bash
# Regenerates the Swift protobuf code from schemas/*.proto:
#   schemas/onnx.proto  -> Sources/FerryONNX/Generated/onnx.pb.swift
#   schemas/caffe.proto -> Sources/FerryCaffe/Generated/caffe.pb.swift
#
# Builds protoc-gen-swift (swift-protobuf, same version as the package
# dependency) once into .build-protoc/ (git-ignored) and reuses it afterwards.
# Needs `protoc` (Debian: protobuf-compiler); installs it when running as root.
#
# Usage: tools/gen-protos.sh            (from any directory)
# Env:   SWIFT_PROTOBUF_VERSION  tag to build (default 1.39.0)
#        SWIFT_PROTOBUF_REPO     git URL/path (default: local mirror if present,
#                                else https://github.com/apple/swift-protobuf.git)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"

VERSION="${SWIFT_PROTOBUF_VERSION:-1.39.0}"
if [[ -z "${SWIFT_PROTOBUF_REPO:-}" ]]; then
  if [[ -d /opt/swift-packages/apple/swift-protobuf.git ]]; then
    # file:// so that --depth 1 applies to the local mirror too.
    SWIFT_PROTOBUF_REPO=file:///opt/swift-packages/apple/swift-protobuf.git
  else
    SWIFT_PROTOBUF_REPO=https://github.com/apple/swift-protobuf.git
  fi
fi

TOOLS_DIR="$ROOT/.build-protoc"
SRC_DIR="$TOOLS_DIR/swift-protobuf-$VERSION"
PLUGIN="$SRC_DIR/.build/release/protoc-gen-swift"

log() { echo "gen-protos: $*" >&2; }

# --- protoc -----------------------------------------------------------------
if ! command -v protoc >/dev/null 2>&1; then
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    # Another apt run may hold the lock; wait for it instead of failing.
    while pgrep -x apt-get >/dev/null 2>&1 || pgrep -x dpkg >/dev/null 2>&1; do
      log "waiting for a running apt-get/dpkg to finish..."
      sleep 5
    done
    if ! command -v protoc >/dev/null 2>&1; then
      log "installing protobuf-compiler"
      DEBIAN_FRONTEND=noninteractive apt-get install -y protobuf-compiler >&2 \
        || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y protobuf-compiler >&2; }
    fi
  else
    log "protoc not found; install protobuf-compiler (apt) or protobuf (brew)"
    exit 1
  fi
fi

# --- protoc-gen-swift ---------------------------------------------------------
if [[ ! -x "$PLUGIN" ]]; then
  mkdir -p "$TOOLS_DIR"
  if [[ ! -d "$SRC_DIR/.git" ]]; then
    rm -rf "$SRC_DIR"
    log "cloning swift-protobuf $VERSION from $SWIFT_PROTOBUF_REPO"
    git -c advice.detachedHead=false clone --quiet --depth 1 --branch "$VERSION" \
      "$SWIFT_PROTOBUF_REPO" "$SRC_DIR"
  fi
  log "building protoc-gen-swift (release; takes a minute or two)"
  (cd "$SRC_DIR" && swift build -c release --product protoc-gen-swift >&2)
fi

# --- generate -----------------------------------------------------------------
# $1 = proto file name in schemas/, $2 = output directory
generate() {
  local proto="$1" out="$2"
  local tmp
  tmp="$(mktemp -d)"
  protoc \
    --plugin=protoc-gen-swift="$PLUGIN" \
    --proto_path="$ROOT/schemas" \
    --swift_opt=Visibility=Public \
    --swift_opt=FileNaming=DropPath \
    --swift_out="$tmp" \
    "$ROOT/schemas/$proto"
  mkdir -p "$out"
  mv -f "$tmp/${proto%.proto}.pb.swift" "$out/"
  rm -rf "$tmp"
  log "wrote ${out#"$ROOT"/}/${proto%.proto}.pb.swift"
}

generate onnx.proto  "$ROOT/Sources/FerryONNX/Generated"
generate caffe.proto "$ROOT/Sources/FerryCaffe/Generated"
