#!/usr/bin/env bash
# Provision the Node.js test app: install the exact packages of tests/apps/node_app/package-lock.json
# into tests/apps/node_app/node_modules with `npm ci` (from the npm registry).
#
# A stamp file in node_modules holds a hash of the lock file and of the node version: when both
# match, nothing is done, so a second run takes a fraction of a second. Concurrent runs
# (parallel tests) wait on a lock.
#
# On success prints one line on stdout: the app directory. Progress and errors go to stderr.
#
#   APMTOP_NODE   the node binary to check the version of (default node; needs 18.19+ or 20.6+)
#   APMTOP_NPM    the npm binary (default npm)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
app=$here/node_app
lock=$app/package-lock.json
modules=$app/node_modules
stamp=$modules/.apmtop-provisioned
node=${APMTOP_NODE:-node}
npm=${APMTOP_NPM:-npm}

say() { echo "provision_node.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

[[ -f $app/package.json && -f $lock ]] || die "missing $app/package.json or its package-lock.json"
command -v "$node" >/dev/null 2>&1 ||
    die "'$node' not found; install Node.js 20 (on Debian/Ubuntu: apt-get install nodejs npm) or set APMTOP_NODE"
command -v "$npm" >/dev/null 2>&1 ||
    die "'$npm' not found; install npm (on Debian/Ubuntu: apt-get install npm) or set APMTOP_NPM"
# The OpenTelemetry JS packages pinned need ^18.19.0 || >=20.6.0.
"$node" -e '
const [major, minor] = process.versions.node.split(".").map(Number);
process.exit((major === 18 && minor >= 19) || (major === 20 && minor >= 6) || major > 20 ? 0 : 1);' ||
    die "$node is $("$node" --version); the pinned OpenTelemetry packages need Node.js 18.19+ or 20.6+"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (coreutils)"

# What node_modules is built from: the lock file and the exact node version.
want=$({
    cat "$lock"
    "$node" --version
} | sha256sum | cut -d' ' -f1)

# One provisioner at a time; the others wait, then find the stamp and return at once.
mkdir -p "$repo/target"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$repo/target/node_app-provision.lock"
    flock 9
else
    say "flock not found; not guarding against concurrent runs"
fi

if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "$app"
    exit 0
fi

say "installing $app/node_modules from package-lock.json with npm ci (needs the npm registry)"
(cd "$app" && "$npm" ci --no-audit --no-fund --loglevel=error >&2) ||
    die "npm ci failed in $app (is the npm registry reachable? check proxy settings or npm_config_registry)"
# Fail here, with the resolution error, rather than later inside a test.
(cd "$app" && "$node" -e '
for (const name of ["express", "pg", "@opentelemetry/sdk-node", "@opentelemetry/instrumentation-http",
                    "@opentelemetry/instrumentation-express", "@opentelemetry/instrumentation-pg"]) {
  require.resolve(name);
}') || die "node_modules in $app is incomplete; see the error above"

echo "$want" >"$stamp"
say "ready: $app"
echo "$app"
