# Sourced by run.sh and test.sh: make sure the project virtualenv exists with the pinned
# requirements installed. Reinstalls only when a requirements file changed.
ensure_venv() {
  local requirements=$1
  VENV=${VENV:-$PWD/.venv}
  local python=${PYTHON:-python3.11}
  if ! command -v "$python" >/dev/null 2>&1; then
    echo "Python 3.11 is required: $python not found (set PYTHON to its path)." >&2
    exit 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    "$python" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
  fi
  local stamp="$VENV/.installed-$(basename "$requirements")"
  local wanted
  wanted=$(cat requirements*.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    # The project itself, for its console script (dcos-registry).
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
    echo "$wanted" > "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}
