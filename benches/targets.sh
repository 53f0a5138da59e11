#!/usr/bin/env bash
# The engine and import targets on a generated organisation (scale L by default), each side by
# side with its reference, with the release binary. Figures go to docs/benchmarks.md.
#
#   cargo build --release --workspace && bash benches/targets.sh [SCALE] [WORKDIR]
#
# Needs PostgreSQL on the local Unix socket (user postgres), psql, curl, python3 and GNU time.
# SKIP_IMPORT=1 reuses the stores of an earlier run (the import figures are left out). Every
# figure is a wall-clock time of one run (medians where it says so) and the peak resident set
# of the process (GNU time's "Maximum resident set size").
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE="${1:-L}"
WORK="${2:-/tmp/flowmeter-targets}"
BIN="$PWD/target/release/flowmeter"
PG_ADMIN="postgres:///postgres?host=/var/run/postgresql&user=postgres"
PG_DB="fm_targets"
PG_URL="postgres:///$PG_DB?host=/var/run/postgresql&user=postgres"
mkdir -p "$WORK"
export FLOWMETER_CONFIG="$WORK/org/flowmeter.toml"

say() { printf '%-60s %s\n' "$1" "$2"; }
# Runs a command under GNU time; prints "<seconds> <peak MiB>".
measure() {
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" > "$WORK/out.txt" 2> "$WORK/err.txt" || {
    cat "$WORK/err.txt" >&2
    return 1
  }
  awk '{ printf "%.2f s, %.0f MiB peak\n", $1, $2 / 1024 }' "$WORK/time.txt"
}
psql_admin() { psql -q -h /var/run/postgresql -U postgres -d postgres -c "$1" > /dev/null; }
fresh_pg() {
  psql_admin "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)"
  psql_admin "CREATE DATABASE $PG_DB"
}

if [ ! -f "$WORK/org/commits.jsonl" ]; then
  rm -rf "$WORK/org"
  "$BIN" generate --scale "$SCALE" --seed 7 "$WORK/org" > /dev/null
fi
RECORDS=$(cat "$WORK"/org/*.jsonl | wc -l)
say "records (scale $SCALE, seed 7)" "$RECORDS"

if [ -z "${SKIP_IMPORT:-}" ]; then
echo "== import"
rm -f "$WORK/l.db"*
start=$(date +%s.%N)
measure "$BIN" import --db "sqlite://$WORK/l.db" "$WORK/org" > "$WORK/import-sqlite.txt"
secs=$(awk '{print $1}' "$WORK/time.txt")
say "import into SQLite" "$(cat "$WORK/import-sqlite.txt"), $(awk -v r="$RECORDS" -v s="$secs" 'BEGIN { printf "%.0fk records/s", r / s / 1000 }')"

fresh_pg
measure "$BIN" import --db "$PG_URL" "$WORK/org" > "$WORK/import-pg.txt"
pg_secs=$(awk '{print $1}' "$WORK/time.txt")
say "import into PostgreSQL" "$(cat "$WORK/import-pg.txt"), $(awk -v r="$RECORDS" -v s="$pg_secs" 'BEGIN { printf "%.0fk records/s", r / s / 1000 }')"
# The reference: the same rows, COPY'd (binary) into the same schema, one table after another.
rm -rf "$WORK/copy" && mkdir -p "$WORK/copy" && chmod 777 "$WORK/copy"
for t in commits pull_requests deployments incidents issues; do
  psql -q -h /var/run/postgresql -U postgres -d "$PG_DB" -c "\\copy $t TO '$WORK/copy/$t.bin' (FORMAT binary)"
done
fresh_pg
"$BIN" migrate --db "$PG_URL" > /dev/null
start=$(date +%s.%N)
for t in commits pull_requests deployments incidents issues; do
  psql -q -h /var/run/postgresql -U postgres -d "$PG_DB" -c "\\copy $t FROM '$WORK/copy/$t.bin' (FORMAT binary)"
done
copy_secs=$(echo "$(date +%s.%N) - $start" | bc)
say "plain COPY of the same rows (reference)" "$(printf '%.2f s' "$copy_secs")"
say "import into PostgreSQL against plain COPY" "$(awk -v c="$copy_secs" -v s="$pg_secs" 'BEGIN { printf "%.2f x", c / s }')"
fresh_pg
"$BIN" import --db "$PG_URL" "$WORK/org" > /dev/null 2>&1
fi

for store in "sqlite://$WORK/l.db" "$PG_URL"; do
  name=$([ "${store#sqlite}" != "$store" ] && echo SQLite || echo PostgreSQL)
  echo "== report, $name"
  # The reference: no kept model, every record read and prepared.
  "$BIN" migrate --db "$store" > /dev/null
  if [ "$name" = SQLite ]; then
    python3 -c "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM engine_snapshots'); c.commit()" "$WORK/l.db"
  else
    psql -q -h /var/run/postgresql -U postgres -d "$PG_DB" -c "DELETE FROM engine_snapshots"
  fi
  report=("$BIN" report --db "$store" --from 2016-01-01 --to 2026-01-01)
  say "cold report, nothing kept (full read; keeps the model)" "$(measure "${report[@]}")"
  say "cold report, the kept model current" "$(measure "${report[@]}")"
done

echo "== serve"
PORT=3987
"$BIN" serve --db "sqlite://$WORK/l.db" --listen 127.0.0.1:$PORT > /dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2> /dev/null || true' EXIT
start=$(date +%s.%N)
until curl -fs "http://127.0.0.1:$PORT/readyz" > /dev/null; do sleep 0.02; done
ready=$(echo "$(date +%s.%N) - $start" | bc)
until curl -fs "http://127.0.0.1:$PORT/" > /dev/null; do sleep 0.02; done
first=$(echo "$(date +%s.%N) - $start" | bc)
say "serve: start to /readyz 200, to the first page" "$(printf '%.2f s, %.2f s' "$ready" "$first")"
say "serve: resident after start" "$(awk '/VmRSS/ { printf "%.0f MiB", $2 / 1024 }' /proc/$SERVER/status)"
count() {
  curl -fs "http://127.0.0.1:$PORT/api/v1/dora?from=2017-01-01&to=2026-12-01" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["deployment_frequency"]["deployments"])'
}
times=()
for i in $(seq 1 20); do
  before=$(count)
  start=$(date +%s.%N)
  curl -fs -X POST -H 'content-type: application/json' "http://127.0.0.1:$PORT/api/v1/deployments" \
    -d "{\"repo\": \"acme/bench-push\", \"id\": \"push-$i-$RANDOM\", \"environment\": \"production\", \"sha\": \"0000000000000000000000000000000000000000\", \"status\": \"success\", \"created_at\": \"2026-06-01T00:00:0${i: -1}Z\"}" > /dev/null
  until [ "$(count)" != "$before" ]; do sleep 0.005; done
  times+=("$(echo "$(date +%s.%N) - $start" | bc)")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n '10,11p' | awk '{ s += $1 } END { printf "%.3f", s / NR }')
say "push until /api/v1/dora counts it (median of 20)" "$median s"
say "serve: resident after 20 pushes" "$(awk '/VmRSS/ { printf "%.0f MiB", $2 / 1024 }' /proc/$SERVER/status); peak $(awk '/VmHWM/ { printf "%.0f MiB", $2 / 1024 }' /proc/$SERVER/status)"
kill $SERVER
wait $SERVER 2> /dev/null || true
psql_admin "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)"
