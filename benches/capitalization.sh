#!/usr/bin/env bash
# A year of weekly capitalization exports on a generated organisation (scale L by default),
# release build, SQLite and PostgreSQL. Prints, per store: the seconds of a 52-week export
# (`--weeks`) and of each of five single-week exports after it (warm: the store's pages are
# in memory), and the rows written.
#
#   bash benches/capitalization.sh [SCALE]
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-L}"
work="$(mktemp -d)"
trap 'rm -rf "$work"; psql -q -h /var/run/postgresql -U postgres -c "DROP DATABASE IF EXISTS fm_bench_cap" >/dev/null 2>&1 || true' EXIT
cargo build --release --workspace -q
bin=target/release/flowmeter
"$bin" generate --scale "$scale" --seed 7 "$work/org" >/dev/null 2>&1
psql -q -h /var/run/postgresql -U postgres -c "DROP DATABASE IF EXISTS fm_bench_cap" >/dev/null
psql -q -h /var/run/postgresql -U postgres -c "CREATE DATABASE fm_bench_cap" >/dev/null
for db in "sqlite://$work/cap.db" "postgres://postgres@localhost/fm_bench_cap?host=/var/run/postgresql"; do
  store="${db%%:*}"
  "$bin" import --db "$db" "$work/org" >/dev/null 2>&1
  config="$work/org/flowmeter.toml"
  start=$(date +%s.%N)
  "$bin" export capitalization --db "$db" --config "$config" --weeks 2025-W45..2026-W44 --out "$work/year.csv" 2>"$work/err" || { cat "$work/err"; exit 1; }
  year=$(echo "$(date +%s.%N) - $start" | bc)
  rows=$(($(wc -l <"$work/year.csv") - 1))
  weeks=""
  for week in 2026-W40 2026-W41 2026-W42 2026-W43 2026-W44; do
    start=$(date +%s.%N)
    "$bin" export capitalization --db "$db" --config "$config" --week "$week" --out "$work/week.csv" 2>/dev/null
    weeks="$weeks $(echo "$(date +%s.%N) - $start" | bc)"
  done
  echo "capitalization $store scale=$scale year_seconds=$year rows=$rows week_seconds=$weeks"
done
