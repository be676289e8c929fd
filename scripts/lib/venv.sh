# Sourced by scripts/run, scripts/test and scripts/check: make .venv and install the project
# into it when pyproject.toml changed since the last install. $1: extras ("" or "dev").
ensure_venv() {
  local extras="$1" python="${PYTHON:-python3}" stamp
  if [ ! -x .venv/bin/python ]; then
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
      echo "zenoti-bridge needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
      exit 2
    }
    echo "creating .venv" >&2
    "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
  fi
  stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)-${extras:-base}"
  if [ ! -f "$stamp" ]; then
    echo "installing zenoti-bridge${extras:+ with [$extras]} into .venv" >&2
    if [ -n "$extras" ]; then
      .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
    else
      .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
    fi
    rm -f .venv/.installed-*
    touch "$stamp"
  fi
}
