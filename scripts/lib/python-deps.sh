# Installs the Python packages a folder's requirements.txt pins (with hashes) into its .deps,
# once per lock (again when it changes). Sourced by scripts/test and the benches that need them.
install_python_deps() {
  local lock deps=$1/.deps
  lock=$(sha256sum "$1/requirements.txt" | cut -d' ' -f1)
  if [ "$(cat "$deps/.lock" 2>/dev/null)" != "$lock" ]; then
    rm -rf "$deps"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
      --no-cache-dir --no-deps --require-hashes --target "$deps" -r "$1/requirements.txt"
    echo "$lock" >"$deps/.lock"
  fi
}
