#!/usr/bin/env bash
# The long soak run: the release server on a generated organisation (scale M by default) for ten
# minutes under 64 readers asking windows never asked before, 4 writers pushing deployments and
# incidents, and a sync every 2 seconds against a fake GitHub answering 5% of requests with 5xx.
# It is the suite's soak test (crates/cli/tests/it/soak.rs), run longer, larger and optimised;
# its last line gives the figures for docs/benchmarks.md: reads served and shed, pushes and their
# p99, /healthz answers and their p99, errors, resident memory at start and end.
#
#   bash benches/soak.sh [SECONDS] [SCALE]
set -euo pipefail
cd "$(dirname "$0")/.."
export FLOWMETER_SOAK_SECONDS="${1:-600}"
export FLOWMETER_SOAK_SCALE="${2:-M}"
cargo test --release --workspace --test it -- \
  soak::a_server_under_readers_writers_and_a_failing_sync_loses_nothing --exact --nocapture 2>&1 |
  grep -E '^soak |test result|panicked'
