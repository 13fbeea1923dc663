#!/usr/bin/env bash
# A CPU flame graph of the release server answering `GET /me` on the embedded store.
#
#   bench/flamegraph.sh                      writes bench/flamegraph-get-me.svg
#   bench/flamegraph.sh /tmp/me.svg          somewhere else
#   FLAME_SECONDS=20 bench/flamegraph.sh     sample longer (default 10 s)
#   FLAME_FOLDED=/tmp/me.folded bench/flamegraph.sh   also keep the folded stacks
#
# Installs what it lacks (perf from Debian's linux-perf, wrk, curl; inferno with
# `cargo install inferno --locked`), builds `cargo build --release --locked -p server`,
# starts the server on a free 127.0.0.1 port (development, embedded store, RUST_LOG=warn
# as bench/run.sh runs it), logs in as the sample user, puts `GET /me` under wrk load
# (bench/me.lua: 2 threads, 64 connections) and samples the server with
# `perf record --call-graph dwarf` on the `cpu-clock` software event, which works in VMs
# without hardware counters. The samples become an SVG with inferno-collapse-perf and
# inferno-flamegraph. Everything it starts is stopped when it exits; it ends by itself.
#
# The release profile has no debuginfo: frames come from the symbol table and the
# unwind tables, so functions inlined into their callers show as the caller.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/bench/flamegraph-get-me.svg}"
SECONDS_SAMPLED="${FLAME_SECONDS:-10}"
WARMUP=2
CONNS=64
THREADS=2
BENCH_NAME=flamegraph
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
[[ "$SECONDS_SAMPLED" =~ ^[0-9]+$ && "$SECONDS_SAMPLED" -ge 1 ]] ||
  die "FLAME_SECONDS must be a whole number of seconds, got '$SECONDS_SAMPLED'"

# --- cleanup: everything started here is stopped on exit ----------------------------------
WORK="$(mktemp -d /tmp/jwt-todo-flame.XXXXXX)"
SERVER_PID=""
WRK_PID=""
cleanup() {
  stop_pid "$WRK_PID"
  stop_pid "$SERVER_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. tools ------------------------------------------------------------------------------
missing=()
command -v perf >/dev/null || missing+=(linux-perf)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  log "installing ${missing[*]} (apt)"
  sudo=()
  ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v inferno-flamegraph >/dev/null || ! command -v inferno-collapse-perf >/dev/null; then
  log "installing inferno (cargo install inferno --locked)"
  cargo install inferno --locked
fi
perf stat -e cpu-clock true >/dev/null 2>&1 ||
  die "perf cannot count cpu-clock here (kernel.perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null)); try as root"

# --- 2. build ------------------------------------------------------------------------------
log "building the release server (cargo build --release --locked -p server)"
(cd "$ROOT" && cargo build --release --locked -p server)
SERVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/server"
[[ -x "$SERVER_BIN" ]] || die "no server binary at $SERVER_BIN"

# --- 3. server and token -------------------------------------------------------------------
PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
# A clean environment and an empty working directory: no .env, no stray variables.
mkdir -p "$WORK/server"
(cd "$WORK/server" && exec env -i "PATH=$PATH" APP_ENV=development "BIND_ADDR=127.0.0.1:$PORT" \
  "ACCESS_SECRET=$ACCESS_SECRET_VALUE" "REFRESH_SECRET=$REFRESH_SECRET_VALUE" RUST_LOG=warn \
  "$SERVER_BIN") >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
ready=""
for _ in $(seq 300); do
  kill -0 "$SERVER_PID" 2>/dev/null || {
    cat "$WORK/server.log" >&2
    die "the server exited at start"
  }
  if curl -sf -o /dev/null "$BASE/readyz"; then
    ready=1
    break
  fi
  sleep 0.1
done
[[ -n "$ready" ]] || {
  cat "$WORK/server.log" >&2
  die "the server did not become ready"
}
ACCESS_TOKEN="$(login | json_field access_token)"
[[ -n "$ACCESS_TOKEN" ]] || die "login gave no access token"
status="$(curl -s -o /dev/null -w '%{http_code}' "$BASE/me" -H "Authorization: Bearer $ACCESS_TOKEN")"
[[ "$status" == 200 ]] || die "GET /me answered $status"

# --- 4. load and samples -------------------------------------------------------------------
log "GET /me under wrk (-t$THREADS -c$CONNS) for $((WARMUP + SECONDS_SAMPLED + 1)) s; sampling the server for $SECONDS_SAMPLED s"
ACCESS_TOKEN="$ACCESS_TOKEN" wrk -t"$THREADS" -c"$CONNS" -d"$((WARMUP + SECONDS_SAMPLED + 1))s" \
  -s "$ROOT/bench/me.lua" "$BASE/me" >"$WORK/wrk.txt" 2>&1 &
WRK_PID=$!
sleep "$WARMUP"
perf record -q -e cpu-clock -F 997 --call-graph dwarf,32768 -p "$SERVER_PID" \
  -o "$WORK/perf.data" -- sleep "$SECONDS_SAMPLED" 2>"$WORK/perf.log" || {
  cat "$WORK/perf.log" >&2
  die "perf record failed"
}
wait "$WRK_PID" || {
  cat "$WORK/wrk.txt" >&2
  die "wrk failed"
}
WRK_PID=""
grep -E '^(Requests/sec|BENCH)' "$WORK/wrk.txt" >&2 || true

# --- 5. the graph --------------------------------------------------------------------------
log "folding stacks (perf script | inferno-collapse-perf)"
perf script -i "$WORK/perf.data" --no-inline 2>/dev/null | inferno-collapse-perf >"$WORK/folded.txt"
[[ -s "$WORK/folded.txt" ]] || die "perf recorded no stacks"
[[ -z "${FLAME_FOLDED:-}" ]] || cp "$WORK/folded.txt" "$FLAME_FOLDED"
inferno-flamegraph --title "jwt-todo GET /me, embedded store (release, wrk -t$THREADS -c$CONNS, ${SECONDS_SAMPLED}s cpu-clock)" \
  --width 1600 <"$WORK/folded.txt" >"$OUT"
log "wrote $OUT ($(wc -l <"$WORK/folded.txt") distinct stacks)"
