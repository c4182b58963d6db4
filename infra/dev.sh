#!/usr/bin/env bash
# One entry point for a fresh machine: installs what synthdb needs, then runs the demo or the tests.
#
#   ./infra/dev.sh demo [synthdb run options]   install, then run the main job on the bundled demo database
#   ./infra/dev.sh test [pytest options]        install, start PostgreSQL and MariaDB if down, run the test suite
#
# System packages come from Debian (JDBC drivers by path, since Spark cannot fetch jars offline; Java 17 for Spark 4;
# Chromium for the report's rendering test). Python packages come from pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
shift || true

SYSTEM_PACKAGES=(openjdk-17-jre-headless libpostgresql-jdbc-java libxerial-sqlite-jdbc-java libmariadb-java)
if [[ "$mode" == "test" ]]; then
  SYSTEM_PACKAGES+=(chromium)
fi

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  echo "synthdb setup: installing system packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install -q --disable-pip-version-check -e '.[dev]'

start_servers() {
  if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    if ls /etc/postgresql >/dev/null 2>&1; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    fi
  fi
  if ! (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; then
    if [[ -x /usr/sbin/mariadbd ]]; then
      start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    fi
  fi
  for _ in $(seq 1 30); do
    if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; then
      return 0
    fi
    sleep 1
  done
  echo "synthdb setup: PostgreSQL or MariaDB did not come up; their tests will skip (or fail under CI)" >&2
}

case "$mode" in
  demo)
    exec "$PYTHON" -m pipelines.cli run "$@"
    ;;
  test)
    start_servers
    set +e
    "$PYTHON" -m pytest "$@"
    rc=$?
    # pytest exits 5 when it collected no test: that is a failure here, not a pass.
    exit $rc
    ;;
  *)
    echo "usage: $0 demo|test [options]" >&2
    exit 2
    ;;
esac
