# Sourced by the scripts: where cargo puts what it builds (CARGO_TARGET_DIR, a
# `build.target-dir` setting, or ./target), and stopping the test cluster kept there.

# The target folder cargo uses for this workspace, as an absolute path.
target_dir() {
  cargo metadata --format-version 1 --no-deps --offline 2>/dev/null \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null \
    || echo "$PWD/target"
}

TARGET_DIR=$(target_dir)
# Cargo, the tests (crates/testkit) and these scripts then agree on it, whatever set it.
export CARGO_TARGET_DIR="$TARGET_DIR"
# The test cluster's folder (crates/testkit keeps it there too).
TEST_CLUSTER_DIR="$TARGET_DIR/tally-test"

# Stops the test cluster if one was started (a trap: never fails the script).
stop_test_cluster() {
  if [ -x "$TARGET_DIR/debug/tally" ] && [ -d "$TEST_CLUSTER_DIR" ]; then
    TALLY_DATA_DIR="$TEST_CLUSTER_DIR" TALLY_LOG=warn "$TARGET_DIR/debug/tally" db stop >/dev/null || true
  fi
}
