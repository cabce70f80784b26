#!/usr/bin/env bash
# Installs Bluesky's PDS (@atproto/pds, pinned) for the tests into a cache folder keyed by its
# version: $CRIER_PDS_DIR, default ~/.cache/crier/pds-<version>. A no-op (about 2 s) when the
# folder already holds a working install. Needs node + npm (Node >= 18.7; 0.5.x needs 22) and a
# C++ compiler: better-sqlite3 is compiled from source (`npm rebuild`), as npm here runs no
# install scripts and its prebuilt binary cannot be downloaded. Takes about 3 minutes.
set -euo pipefail
VERSION=0.4.217
DIR=${CRIER_PDS_DIR:-$HOME/.cache/crier/pds-$VERSION}

works() {
  (cd / && node -e "
    const pds = require('$DIR/node_modules/@atproto/pds');
    if (require('$DIR/node_modules/@atproto/pds/package.json').version !== '$VERSION') process.exit(1);
    for (const f of ['readEnv', 'envToCfg', 'envToSecrets']) if (typeof pds[f] !== 'function') process.exit(1);
    const Db = require('$DIR/node_modules/better-sqlite3'); new Db(':memory:').close();
  ") >/dev/null 2>&1
}

if works; then
  exit 0
fi
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "install.sh: $tool not found (apt-get install nodejs npm build-essential)" >&2; exit 1; }
done
echo "installing @atproto/pds@$VERSION into $DIR (about 3 minutes)" >&2
mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || echo '{"name":"crier-pds","private":true}' > package.json
start=$(date +%s)
npm install --no-audit --no-fund --save-exact "@atproto/pds@$VERSION" >npm.log 2>&1 || { tail -20 npm.log >&2; exit 1; }
# npm may or may not have run better-sqlite3's install script (allowScripts); compile it if not
if ! (cd / && node -e "new (require('$DIR/node_modules/better-sqlite3'))(':memory:').close()") >/dev/null 2>&1; then
  npm rebuild better-sqlite3 >>npm.log 2>&1 || { tail -20 npm.log >&2; exit 1; }
fi
echo "installed in $(( $(date +%s) - start )) s" >&2
works || { echo "install.sh: @atproto/pds@$VERSION in $DIR does not load; see $DIR/npm.log" >&2; exit 1; }
