#!/usr/bin/env bash
# Refresh the vendored Socket.IO browser client in static/vendor/socket.io-client/.
#
#   scripts/refresh-socketio-client.sh            # the pinned version (static/vendor/socket.io-client/VERSION)
#   scripts/refresh-socketio-client.sh 4.8.5      # pin another 4.x version
#
# Fetches the npm package with `npm pack` (the npm registry, nothing else), checks its
# integrity against the registry's published hash, and copies the ESM browser build and
# its licence. The server speaks Socket.IO 4 (Engine.IO 4): stay on socket.io-client 4.x.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=static/vendor/socket.io-client
version="${1:-$(cat "$dest/VERSION")}"
case "$version" in
  4.*) ;;
  *) echo "socket.io-client $version: the server speaks Socket.IO 4; use a 4.x version" >&2; exit 2 ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "socket.io-client@$version" >/dev/null)
tarball="$(ls "$work"/socket.io-client-*.tgz)"
expected="$(npm view "socket.io-client@$version" dist.integrity)"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$expected" != "$actual" ]; then
  echo "integrity mismatch for socket.io-client@$version: $actual != $expected" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work"

mkdir -p "$dest"
cp "$work/package/dist/socket.io.esm.min.js" "$work/package/dist/socket.io.esm.min.js.map" "$dest/"
cp "$work/package/LICENSE" "$dest/LICENSE"
echo "$version" > "$dest/VERSION"
echo "$expected" > "$dest/INTEGRITY"
echo "vendored socket.io-client $version into $dest"
