# Shared helpers for the scripts in scripts/. Source, don't run.

# Run as root, or through sudo when we are not root.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

apt_updated=""
# Install Debian packages that are missing (by the command they provide).
#   need_pkg COMMAND PACKAGE
need_pkg() {
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$1 is missing and this is not a Debian machine: install $2 yourself" >&2
    return 1
  fi
  echo "==> installing $2 (for $1)" >&2
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq >&2; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$2" >&2
}

# Install Debian packages by name (for packages that provide no command to look for).
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq >&2; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >&2
}

# The official `stripe` Python library, in a venv under target/, for the tests that check our
# webhook signatures with Stripe's own code. Exports CALMONY_STRIPE_PYTHON.
need_stripe_python() {
  local venv=target/stripe-venv
  if ! "$venv/bin/python" -c 'import stripe' >/dev/null 2>&1; then
    need_pkg python3 python3
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      apt_install python3-venv
      rm -rf "$venv"
      python3 -m venv "$venv"
    fi
    echo "==> installing the stripe Python library (for webhook signature tests)" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check stripe >&2
  fi
  export CALMONY_STRIPE_PYTHON="$PWD/$venv/bin/python"
}

# schemathesis (PyPI), in a venv under target/, for scripts/fuzz-api. Exports
# CALMONY_SCHEMATHESIS.
need_schemathesis() {
  local venv=target/schemathesis-venv
  if ! "$venv/bin/schemathesis" --version >/dev/null 2>&1; then
    need_pkg python3 python3
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      apt_install python3-venv
      rm -rf "$venv"
      python3 -m venv "$venv"
    fi
    echo "==> installing schemathesis (for the API fuzz run)" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check schemathesis >&2
  fi
  export CALMONY_SCHEMATHESIS="$PWD/$venv/bin/schemathesis"
}

# redis-server only as a binary: the project never uses the system service.
need_redis() {
  need_pkg redis-server redis-server
}
