#!/usr/bin/env bash
# Provision the Python environment of the instrumented test apps.
#
# Creates a virtualenv at ${APMTOP_PYENV:-<repo>/target/pyenv} with exactly the packages
# pinned in tests/apps/django_app/requirements.txt, from PyPI. A stamp file holds a hash of
# the requirements and of the interpreter version: when both match, nothing is done, so a
# second run takes a fraction of a second. Concurrent runs (parallel tests) wait on a lock.
#
# On success prints one line on stdout: the virtualenv's python. Progress and errors go to
# stderr.
#
#   APMTOP_PYENV    where the virtualenv lives (default <repo>/target/pyenv)
#   APMTOP_PYTHON   interpreter to build it from (default python3; needs 3.10 or newer)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${APMTOP_PYENV:-$repo/target/pyenv}
requirements=$here/django_app/requirements.txt
base_python=${APMTOP_PYTHON:-python3}
stamp=$venv/.apmtop-provisioned

say() { echo "provision.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

[[ -f $requirements ]] || die "missing $requirements"
command -v "$base_python" >/dev/null 2>&1 ||
    die "'$base_python' not found; install CPython 3.10+ or set APMTOP_PYTHON to one"
"$base_python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "$base_python is $("$base_python" -V 2>&1); Django 5.2 needs Python 3.10 or newer (set APMTOP_PYTHON)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (coreutils)"

# What the environment is built from: the pins and the exact interpreter.
want=$({
    cat "$requirements"
    "$base_python" -c 'import sys; print(sys.version)'
} | sha256sum | cut -d' ' -f1)

mkdir -p "$(dirname "$venv")"
# One provisioner at a time; the others wait, then find the stamp and return at once.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$venv.lock"
    flock 9
else
    say "flock not found; not guarding against concurrent runs"
fi

if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

if [[ -e $venv ]]; then
    # Only ever replace something that is a virtualenv (or an empty directory).
    if [[ -f $venv/pyvenv.cfg ]] || [[ -d $venv && -z $(ls -A "$venv") ]]; then
        say "requirements or interpreter changed; rebuilding $venv"
        rm -rf "$venv"
    else
        die "$venv exists and is not a virtualenv; remove it or set APMTOP_PYENV elsewhere"
    fi
fi

say "creating $venv from $requirements (needs PyPI; takes a minute)"
"$base_python" -m venv "$venv" ||
    die "could not create a virtualenv with $base_python (on Debian/Ubuntu: apt-get install python3-venv)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --requirement "$requirements" ||
    die "pip could not install $requirements (is PyPI reachable? check proxy settings or PIP_INDEX_URL)"
# Fail here, with the import error, rather than later inside a test.
"$venv/bin/python" - <<'EOF' || die "the new environment is incomplete; see the error above"
import django
import opentelemetry.distro
import opentelemetry.exporter.otlp.proto.grpc.trace_exporter
import opentelemetry.exporter.otlp.proto.http.trace_exporter
import opentelemetry.instrumentation.django
import opentelemetry.instrumentation.sqlite3
import opentelemetry.sdk.trace
EOF
[[ -x $venv/bin/opentelemetry-instrument ]] || die "opentelemetry-instrument missing from $venv/bin"

echo "$want" >"$stamp"
say "ready: $venv"
echo "$venv/bin/python"
