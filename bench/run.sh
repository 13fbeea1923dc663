#!/usr/bin/env bash
# End-to-end benchmark of the release server with wrk, over both stores.
#
#   bench/run.sh                       every scenario, 10 s each, both stores
#   BENCH_DURATION=120s bench/run.sh   longer runs (wrk durations: 30s, 2m, ...)
#   BENCH_STORES=redis bench/run.sh    one store only (embedded | redis)
#   BENCH_REVOCATION=0 bench/run.sh    without the two-replica revocation part
#   BENCH_SERVER_BIN=path bench/run.sh another build of the server (an earlier commit's)
#
# Installs what it lacks (wrk, redis-server, redis-tools, curl; Debian apt, without
# starting a system Redis), builds `cargo build --release --locked -p server` with two of
# the server crate's bench targets (`benches/bare_server.rs`, the ceiling, and
# `benches/revocation.rs`, the revocation client), and for each store starts the server on a
# free 127.0.0.1 port: (a) the embedded store, (b) a redis-server of its own on a free port
# (`--save '' --appendonly no`). Everything it starts is stopped when it exits, whatever
# happens (a paused Redis is continued first); it ends by itself.
#
# The ceiling: before each store's scenarios, `GET /me` with the same wrk script against a
# bare poem-openapi server (benches/bare_server.rs: the project's JWT codec verifies the
# same access token, no store call, no middleware). Every req/s is also printed as a ratio
# to the ceiling measured next to it. For issue 16's targets (Redis read >= 0.8, embedded
# >= 0.85) the read is also measured in BENCH_READ_ROUNDS (default 3; 0: skipped) alternating
# rounds of the ceiling and the store's `GET /me`, and the median ratio is the one judged.
#
# The session cache (Redis only): the servers get SESSION_CACHE_STALENESS=$BENCH_CACHE_STALENESS
# (default 50ms) and SESSION_CACHE_CAPACITY=$BENCH_CACHE_CAPACITY (default 10000). After each
# Redis scenario its /metrics gives the cache's hits and misses during the scenario (hit
# rate) and its entries; a server without these series prints "cache metrics absent".
# BENCH_CACHE_FILL=N (default 0: skipped) adds a Redis scenario `me-many`: GET /me cycling
# over N sessions (N logins first, Argon2 each: about N / 100 seconds), so that the cache
# fills to its capacity and the peak RSS with the cache full shows (issue 16: < 64 MiB).
#
# Revocation (with the Redis store; BENCH_REVOCATION=0 skips it): a fresh Redis and two
# replicas A and B on it, a paced wrk GET /me load on both (BENCH_REVOCATION_LOAD_CONNS
# connections each, default 8, each waiting BENCH_REVOCATION_LOAD_DELAY_MS ms before each
# request, default 1; 0: back to back; the rate is read from the replicas' /metrics and
# printed), then benches/revocation.rs: BENCH_REVOCATION_TRIALS (default
# 1000) logouts on A, each timed to B's first 401 for that token; BENCH_LINK_CUTS (default
# 20) pauses of Redis (SIGSTOP/SIGCONT) while B serves a cached token, and as many
# `CLIENT KILL`s of the `jwt-todo-tracking` connections, timed on B's /metrics.
#
# Scenarios, each with wrk (keep-alive, 64 connections, 2 threads, fixed duration):
#   me          GET /me with one access token
#   todo        POST /todo with one access token
#   refresh     POST /token/refresh, each connection spending a rotating token of its own
#   login       POST /login (Argon2id at the OWASP parameters on every request)
#   me+storm    GET /me (32 conns) while POST /login (32 conns) runs alongside; the read's numbers
#   me-many     (Redis, with BENCH_CACHE_FILL=N) GET /me cycling over N sessions' tokens
# Against the same Redis, `redis-benchmark -t get,set -c 64 -n 200000 -q`: the ceiling of one
# round trip per request, and the ratios to it.
#
# Per scenario: requests/s and its ratio to the ceiling, p50, p99, errors (non-2xx answers +
# socket errors), the server's peak RSS during the scenario (VmHWM, reset before each
# scenario where the kernel allows) and its RSS at the start and end of the scenario. The
# end of the output is a summary in markdown, with the machine and date, for the README.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
DURATION="${BENCH_DURATION:-10s}"
STORES="${BENCH_STORES:-embedded redis}"
CONNS=64
THREADS=2
STORM_CONNS=32
# Generous: a login waits behind up to 63 others for one of the Argon2 permits.
WRK_TIMEOUT=30s
# Login throttling limits for the benchmark's server (see start_server).
BENCH_LOGIN_LIMIT=1000000
CACHE_STALENESS="${BENCH_CACHE_STALENESS:-50ms}"
CACHE_CAPACITY="${BENCH_CACHE_CAPACITY:-10000}"
REVOCATION="${BENCH_REVOCATION:-1}"
CACHE_FILL="${BENCH_CACHE_FILL:-0}"
REVOCATION_TRIALS="${BENCH_REVOCATION_TRIALS:-1000}"
LINK_CUTS="${BENCH_LINK_CUTS:-20}"
REVOCATION_LOAD_CONNS="${BENCH_REVOCATION_LOAD_CONNS:-8}"
REVOCATION_LOAD_DELAY_MS="${BENCH_REVOCATION_LOAD_DELAY_MS:-1}"
READ_ROUNDS="${BENCH_READ_ROUNDS:-3}"

BENCH_NAME=bench
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

# wrk duration -> whole seconds (accepts 10, 10s, 2m, 1h).
seconds_of() {
  local d="$1"
  case "$d" in
    *h) echo $((${d%h} * 3600)) ;;
    *m) echo $((${d%m} * 60)) ;;
    *s) echo "${d%s}" ;;
    *) echo "$d" ;;
  esac
}
DURATION_S="$(seconds_of "$DURATION")"
[[ "$DURATION_S" =~ ^[0-9]+$ && "$DURATION_S" -ge 1 ]] ||
  die "BENCH_DURATION must be a whole number of seconds, minutes or hours (10s, 2m), got '$DURATION'"
for store in $STORES; do
  [[ "$store" == embedded || "$store" == redis ]] || die "BENCH_STORES: unknown store '$store'"
done
for n in READ_ROUNDS CACHE_FILL REVOCATION_TRIALS LINK_CUTS REVOCATION_LOAD_CONNS REVOCATION_LOAD_DELAY_MS CACHE_CAPACITY; do
  [[ "${!n}" =~ ^[0-9]+$ ]] || die "BENCH_$n must be a whole number, got '${!n}'"
done

# --- cleanup: everything started here is stopped on exit ----------------------------------
WORK="$(mktemp -d /tmp/jwt-todo-bench.XXXXXX)"
SERVER_PID=""
REDIS_PID=""
BARE_PID=""
A_PID=""
B_PID=""
declare -a BG_PIDS=()
cleanup() {
  local pid
  for pid in "${BG_PIDS[@]+"${BG_PIDS[@]}"}"; do stop_pid "$pid"; done
  stop_pid "$SERVER_PID"
  stop_pid "$BARE_PID"
  stop_pid "$A_PID"
  stop_pid "$B_PID"
  stop_pid "$REDIS_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. tools ------------------------------------------------------------------------------
install_missing() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-benchmark >/dev/null || missing+=(redis-tools)
  command -v curl >/dev/null || missing+=(curl)
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]} (apt)"
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  # invoke-rc.d asks policy-rc.d; 101 = "action forbidden": the package must not start a
  # system redis. An existing policy-rc.d is put back afterwards.
  local backup=""
  if [[ -e /usr/sbin/policy-rc.d ]]; then
    backup="$(mktemp)"
    "${sudo[@]}" cp -p /usr/sbin/policy-rc.d "$backup"
  fi
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
  local status=0
  {
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  } || status=$?
  if [[ -n "$backup" ]]; then
    "${sudo[@]}" mv -f "$backup" /usr/sbin/policy-rc.d
  else
    "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
  fi
  ((status == 0)) || die "apt-get install ${missing[*]} failed"
  if [[ " ${missing[*]} " == *" redis-server "* ]]; then
    # In case a service got started anyway (e.g. under systemd).
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
      "${sudo[@]}" systemctl disable --now redis-server >/dev/null 2>&1 || true
    fi
  fi
}
install_missing

# --- 2. build ------------------------------------------------------------------------------
log "building the release server and the bench programs (cargo build --release --locked -p server --bin server --bench bare_server --bench revocation)"
(cd "$ROOT" && cargo build --release --locked -p server --bin server --bench bare_server \
  --bench revocation --message-format=json-render-diagnostics) >"$WORK/build.json" ||
  die "the build failed"
# A bench target's executable carries a hash (target/release/deps/<name>-<hash>): cargo
# names it in its JSON messages.
executable_of() {
  grep -o "\"executable\":\"[^\"]*/$1\(-[0-9a-f]*\)\?\"" "$WORK/build.json" | tail -n1 |
    sed 's/^"executable":"//; s/"$//'
}
SERVER_BIN="$(executable_of server)"
# Another build of the server to measure instead (e.g. an earlier commit's, to compare with
# this one's in the same conditions); the ceiling and the bench programs stay this tree's.
if [[ -n "${BENCH_SERVER_BIN:-}" ]]; then
  [[ -x "$BENCH_SERVER_BIN" ]] || die "BENCH_SERVER_BIN: $BENCH_SERVER_BIN is not an executable"
  SERVER_BIN="$BENCH_SERVER_BIN"
  log "measuring the server at $SERVER_BIN"
fi
BARE_BIN="$(executable_of bare_server)"
REVOCATION_BIN="$(executable_of revocation)"
[[ -x "$SERVER_BIN" ]] || die "no server binary in cargo's output"
[[ -x "$BARE_BIN" ]] || die "no bare_server binary in cargo's output"
[[ -x "$REVOCATION_BIN" ]] || die "no revocation binary in cargo's output"

# --- helpers -------------------------------------------------------------------------------
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# start_server <store> [redis url]
start_server() {
  local port
  port="$(free_port)"
  BASE="http://127.0.0.1:$port"
  local env=(
    "PATH=$PATH"
    "APP_ENV=development"
    "BIND_ADDR=127.0.0.1:$port"
    "ACCESS_SECRET=$ACCESS_SECRET_VALUE"
    "REFRESH_SECRET=$REFRESH_SECRET_VALUE"
    "RUST_LOG=warn"
    # Throttling stays on (every login pays its admit and settle round trips), with limits
    # no benchmark reaches: all its logins come from 127.0.0.1, up to 64 in flight at once,
    # and an admitted attempt counts until it is settled, so the defaults (5 per username
    # and client, 100 per client) would refuse most of them with 429.
    "LOGIN_PAIR_LIMIT=$BENCH_LOGIN_LIMIT"
    "LOGIN_CLIENT_LIMIT=$BENCH_LOGIN_LIMIT"
    # The per-user quotas stay on too (every creation pays its checks in the insert
    # script), with limits no benchmark reaches: one user creates tens of thousands of
    # todos a second, and the login scenarios open thousands of sessions for one user
    # (the default cap, 50, would end the session whose token the reads use).
    "TODO_CREATE_LIMIT=1000000"
    "TODO_CREATE_WINDOW=1s"
    "MAX_TODOS_PER_USER=10000000"
    "MAX_SESSIONS_PER_USER=1000000"
  )
  # The session cache (issue 16) exists only over Redis standalone; a server without it
  # ignores these two.
  [[ -n "${2:-}" ]] && env+=("REDIS_URL=$2" "SESSION_CACHE_STALENESS=$CACHE_STALENESS"
    "SESSION_CACHE_CAPACITY=$CACHE_CAPACITY")
  mkdir -p "$WORK/server-$1"
  # A clean environment and an empty working directory: no .env, no stray variables.
  (cd "$WORK/server-$1" && exec env -i "${env[@]}" "$SERVER_BIN") >"$WORK/server-$1.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || {
      cat "$WORK/server-$1.log" >&2
      die "the server ($1) exited at start"
    }
    if curl -sf -o /dev/null "$BASE/readyz" && login >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  cat "$WORK/server-$1.log" >&2
  die "the server ($1) did not become ready"
}

start_redis() {
  REDIS_PORT="$(free_port)"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --daemonize no --protected-mode yes --dir "$WORK" >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 100); do
    if redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
      return 0
    fi
    sleep 0.1
  done
  cat "$WORK/redis.log" >&2
  die "redis-server did not start"
}

# Parses wrk's output (the BENCH line from bench/common.lua) into R_* variables.
parse_wrk() {
  local line
  line="$(grep '^BENCH ' "$1" | tail -n1)" || {
    cat "$1" >&2
    die "wrk printed no result ($1)"
  }
  local requests duration p50 p99 non2xx socket statuses
  requests="$(sed 's/.* requests=\([0-9]*\).*/\1/' <<<"$line")"
  duration="$(sed 's/.* duration_us=\([0-9]*\).*/\1/' <<<"$line")"
  p50="$(sed 's/.* p50_us=\([0-9]*\).*/\1/' <<<"$line")"
  p99="$(sed 's/.* p99_us=\([0-9]*\).*/\1/' <<<"$line")"
  non2xx="$(sed 's/.* non2xx=\([0-9]*\).*/\1/' <<<"$line")"
  socket="$(sed 's/.* socket_errors=\([0-9]*\).*/\1/' <<<"$line")"
  statuses="$(sed -n 's/.* statuses=\([0-9:,]*\).*/\1/p' <<<"$line")"
  R_RPS="$(awk -v r="$requests" -v d="$duration" 'BEGIN { printf "%.0f", r / (d / 1e6) }')"
  R_P50="$(awk -v u="$p50" 'BEGIN { printf "%.2f", u / 1000 }')"
  R_P99="$(awk -v u="$p99" 'BEGIN { printf "%.2f", u / 1000 }')"
  R_ERRORS=$((non2xx + socket))
  R_OK=$((requests - non2xx))
  R_ERRDETAIL="$non2xx non-2xx${statuses:+ ($statuses)}, $socket socket"
}

run_wrk() { # <output file> <connections> <duration> <script> <path>
  env BENCH_TOKENS="${TOKENS_FILE:-$WORK/refresh-tokens}" WRK_THREADS="$THREADS" \
    wrk -t"$THREADS" -c"$2" -d"$3" --timeout "$WRK_TIMEOUT" -s "$BENCH/$4" "$BASE$5" >"$1" 2>&1 ||
    {
      cat "$1" >&2
      die "wrk failed ($4)"
    }
}

# A client that disconnects does not cancel its login: the server finishes the hash it
# queued. So after a scenario, wait until a login is answered quickly again (nothing queued
# ahead of it), so that the next scenario starts on a quiet server.
settle() {
  local took
  for _ in $(seq 120); do
    took="$(curl -s -o /dev/null -w '%{time_total}' -X POST "$BASE/login" \
      -H 'Content-Type: application/json' -d '{"username":"username","password":"password"}')" || took=9
    awk -v t="$took" 'BEGIN { exit !(t < 0.3) }' && return 0
    sleep 0.5
  done
  log "the server is still busy after 60 s; going on"
}

declare -a ROWS=()
declare -a CACHE_ROWS=()
declare -A RES=()
OVERALL_PEAK=0

# The session cache's series on $BASE/metrics: "hits misses entries live", each "-" when
# absent (a server without the cache).
cache_metrics() {
  curl -sf "$BASE/metrics" 2>/dev/null | awk '
    function take(name) { if (index($0, name) == 1) { rest = substr($0, length(name) + 1)
      if (rest ~ /^[ {]/) { v[name] += $NF; seen[name] = 1 } } }
    { take("jwt_todo_session_cache_hits_total"); take("jwt_todo_session_cache_misses_total")
      take("jwt_todo_session_cache_entries"); take("jwt_todo_session_cache_live") }
    END {
      n = split("jwt_todo_session_cache_hits_total jwt_todo_session_cache_misses_total jwt_todo_session_cache_entries jwt_todo_session_cache_live", k, " ")
      for (i = 1; i <= n; i++) printf "%s%s", (i > 1 ? " " : ""), (k[i] in seen ? sprintf("%.0f", v[k[i]]) : "-")
      print ""
    }'
}

# Ratio of req/s to the ceiling measured for this store ("-" without one).
to_ceiling() {
  local ceiling="${RES[$1.ceiling.rps]:-}"
  [[ -n "$ceiling" && "$ceiling" != 0 ]] || {
    echo "-"
    return
  }
  awk -v a="$2" -v b="$ceiling" 'BEGIN { printf "%.2f", a / b }'
}

# scenario <store> <name> <function running the load into $WORK/out>
scenario() {
  local store="$1" name="$2" fn="$3"
  # Reset the peak-RSS mark to the current RSS, so that VmHWM is this scenario's peak
  # (Linux >= 4.0; without it the peak is the process's since start).
  echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || true
  local rss0 rss1 hwm
  rss0="$(status_kib "$SERVER_PID" VmRSS)"
  log "$store: $name ($DURATION)"
  local c0="" c1=""
  [[ "$store" == redis ]] && c0="$(cache_metrics)"
  "$fn"
  # Read right after the load, before settle's logins.
  [[ "$store" == redis ]] && c1="$(cache_metrics)"
  settle
  parse_wrk "$WORK/out"
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during $name"
  rss1="$(status_kib "$SERVER_PID" VmRSS)"
  hwm="$(status_kib "$SERVER_PID" VmHWM)"
  ((hwm > OVERALL_PEAK)) && OVERALL_PEAK=$hwm
  ((hwm > ${RES[$store.peak]:-0})) && RES["$store.peak"]=$hwm
  RES["$store.$name.ok"]=$R_OK
  RES["$store.$name.rps"]=$R_RPS
  RES["$store.$name.p99"]=$R_P99
  RES["$store.$name.errors"]=$R_ERRORS
  RES["$store.$name.rss0"]=$rss0
  RES["$store.$name.rss1"]=$rss1
  RES["$store.$name.ratio"]="$(to_ceiling "$store" "$R_RPS")"
  local row
  row="$(printf '| %-8s | %-8s | %8s | %7s | %6s ms | %7s ms | %6s | %6s MiB | %5s -> %5s MiB |' \
    "$store" "$name" "$R_RPS" "${RES[$store.$name.ratio]}" "$R_P50" "$R_P99" "$R_ERRORS" "$(mib "$hwm")" "$(mib "$rss0")" "$(mib "$rss1")")"
  ROWS+=("$row")
  printf '%s   (%s)\n' "$row" "$R_ERRDETAIL" >&2
  [[ "$store" == redis ]] && cache_row "$name" "$c0" "$c1"
  return 0
}

# cache_row <scenario> <metrics before> <metrics after>: hit rate during the scenario, size.
cache_row() {
  local h0 m0 h1 m1 entries live row
  read -r h0 m0 _ _ <<<"$2"
  read -r h1 m1 entries live <<<"$3"
  if [[ "$h0" == - || "$h1" == - || "$m0" == - || "$m1" == - || -z "$h1" ]]; then
    row="$(printf '| %-8s | %s |' "$1" "cache metrics absent")"
    RES["cache.$1"]="absent"
  else
    local hits=$((h1 - h0)) misses=$((m1 - m0)) rate="-"
    ((hits + misses > 0)) && rate="$(awk -v h="$hits" -v m="$misses" 'BEGIN { printf "%.1f%%", 100 * h / (h + m) }')"
    row="$(printf '| %-8s | %10s | %10s | %8s | %7s | %4s |' "$1" "$hits" "$misses" "$rate" "$entries" "$live")"
    RES["cache.$1"]="$rate"
    RES["cache.$1.entries"]="$entries"
  fi
  CACHE_ROWS+=("$row")
  printf '    session cache: %s\n' "$row" >&2
}

# start_bare <store>: benches/bare_server.rs on a port of its own (BARE_BASE), verifying
# the token of the store's server (same ACCESS_SECRET).
start_bare() {
  local store="$1" port
  port="$(free_port)"
  env -i "PATH=$PATH" "ACCESS_SECRET=$ACCESS_SECRET_VALUE" "REFRESH_SECRET=$REFRESH_SECRET_VALUE" \
    "$BARE_BIN" --listen "127.0.0.1:$port" >"$WORK/bare-$store.log" 2>&1 &
  BARE_PID=$!
  BARE_BASE="http://127.0.0.1:$port"
  local ready=0
  for _ in $(seq 100); do
    kill -0 "$BARE_PID" 2>/dev/null || break
    if [[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ACCESS_TOKEN" "$BARE_BASE/me")" == 200 ]]; then
      ready=1
      break
    fi
    sleep 0.1
  done
  ((ready)) || {
    cat "$WORK/bare-$store.log" >&2
    die "the bare server did not answer the service's token with 200"
  }
}

# The ceiling for <store>: GET /me with the same wrk script against benches/bare_server.rs.
ceiling() {
  local store="$1" service_base="$BASE"
  start_bare "$store"
  BASE="$BARE_BASE"
  echo 5 >"/proc/$BARE_PID/clear_refs" 2>/dev/null || true
  log "$store: ceiling, bare poem-openapi GET /me ($DURATION)"
  run_wrk "$WORK/out" "$CONNS" "$DURATION" me.lua /me
  parse_wrk "$WORK/out"
  local hwm
  hwm="$(status_kib "$BARE_PID" VmHWM)"
  stop_pid "$BARE_PID"
  BARE_PID=""
  BASE="$service_base"
  RES["$store.ceiling.rps"]=$R_RPS
  RES["$store.ceiling.p99"]=$R_P99
  local row
  row="$(printf '| %-8s | %-8s | %8s | %7s | %6s ms | %7s ms | %6s | %6s MiB | %-19s |' \
    "bare" "ceiling" "$R_RPS" "1.00" "$R_P50" "$R_P99" "$R_ERRORS" "$(mib "$hwm")" "(before $store)")"
  ROWS+=("$row")
  printf '%s   (%s)\n' "$row" "$R_ERRDETAIL" >&2
}

# Alternating rounds for <store>'s read ratio (issue 16's targets): the ceiling, then the
# store's GET /me, READ_ROUNDS times, each as long as a scenario; the ratio is the median of
# the rounds' ratios, so that the machine drifting between two measurements (seen here: the
# same binary 25% apart a minute later) moves both sides of each ratio alike.
read_rounds() {
  local store="$1" service_base="$BASE" r ceiling read p99 ratios=() p99s=() errors=0 detail=()
  start_bare "$store"
  for r in $(seq "$READ_ROUNDS"); do
    BASE="$BARE_BASE"
    run_wrk "$WORK/out" "$CONNS" "$DURATION" me.lua /me
    parse_wrk "$WORK/out"
    ceiling=$R_RPS
    BASE="$service_base"
    run_wrk "$WORK/out" "$CONNS" "$DURATION" me.lua /me
    parse_wrk "$WORK/out"
    read=$R_RPS p99=$R_P99
    errors=$((errors + R_ERRORS))
    ratios+=("$(awk -v a="$read" -v b="$ceiling" 'BEGIN { printf "%.2f", a / b }')")
    p99s+=("$p99")
    detail+=("$read/$ceiling")
    log "$store: read round $r: ceiling $ceiling req/s, me $read req/s (p99 $p99 ms): ${ratios[-1]}"
  done
  stop_pid "$BARE_PID"
  BARE_PID=""
  BASE="$service_base"
  RES["$store.rounds.ratio"]="$(median "${ratios[@]}")"
  RES["$store.rounds.p99"]="$(median "${p99s[@]}")"
  RES["$store.rounds.errors"]=$errors
  RES["$store.rounds.list"]="${ratios[*]}"
  RES["$store.rounds.detail"]="${detail[*]}"
}

# The median of the numbers given (the lower middle one of an even count).
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

load_me() { run_wrk "$WORK/out" "$CONNS" "$DURATION" me.lua /me; }
load_me_many() { TOKENS_FILE="$WORK/many-tokens" run_wrk "$WORK/out" "$CONNS" "$DURATION" me-many.lua /me; }
load_todo() { run_wrk "$WORK/out" "$CONNS" "$DURATION" todo.lua /todo; }
load_login() { run_wrk "$WORK/out" "$CONNS" "$DURATION" login.lua /login; }
load_refresh() {
  # One session and one refresh token per connection, from as many logins; and one more,
  # which wrk spends checking the request before the run (see bench/refresh.lua).
  : >"$WORK/refresh-tokens"
  local token
  for _ in $(seq "$((CONNS + 1))"); do
    token="$(login | json_field refresh_token)"
    [[ -n "$token" ]] || die "login for a refresh token failed"
    echo "$token" >>"$WORK/refresh-tokens"
  done
  run_wrk "$WORK/out" "$CONNS" "$DURATION" refresh.lua /token/refresh
}
load_storm() {
  # The storm starts first and ends last, so the read runs inside it throughout.
  run_wrk "$WORK/storm" "$STORM_CONNS" "$((DURATION_S + 3))s" login.lua /login &
  local storm=$!
  BG_PIDS+=("$storm")
  sleep 1
  run_wrk "$WORK/out" "$STORM_CONNS" "$DURATION" me.lua /me
  wait "$storm" || die "the login storm's wrk failed"
  BG_PIDS=()
  parse_wrk "$WORK/storm"
  STORM_NOTE="login storm alongside: $R_RPS logins/s, p99 $R_P99 ms, $R_ERRDETAIL"
  STORM_LOGINS=$R_OK
}

run_store() {
  local store="$1"
  if [[ "$store" == redis ]]; then
    start_redis
    start_server redis "redis://127.0.0.1:$REDIS_PORT"
    log "redis: redis-benchmark -t get,set -c $CONNS -n 200000 -q"
    redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -t get,set -c "$CONNS" -n 200000 -q \
      2>&1 | tr '\r' '\n' | grep -E '^(GET|SET): [0-9.]+ requests per second' >"$WORK/redis-benchmark" || true
    cat "$WORK/redis-benchmark" >&2
    REDIS_GET="$(awk '/^GET:/ { printf "%.0f", $2 }' "$WORK/redis-benchmark")"
    REDIS_SET="$(awk '/^SET:/ { printf "%.0f", $2 }' "$WORK/redis-benchmark")"
    [[ -n "$REDIS_GET" && -n "$REDIS_SET" ]] || die "redis-benchmark printed no GET/SET rate"
  else
    start_server embedded
  fi
  local token
  token="$(login | json_field access_token)"
  [[ -n "$token" ]] || die "login failed"
  export ACCESS_TOKEN="$token"

  ceiling "$store"
  RES["$store.start_rss"]="$(status_kib "$SERVER_PID" VmRSS)"
  scenario "$store" me load_me
  ((READ_ROUNDS > 0)) && read_rounds "$store"
  scenario "$store" todo load_todo
  scenario "$store" refresh load_refresh
  scenario "$store" login load_login
  STORM_NOTE="" STORM_LOGINS=0
  scenario "$store" me+storm load_storm
  RES["$store.storm_note"]="$STORM_NOTE"
  RES["$store.storm_logins"]="$STORM_LOGINS"
  if [[ "$store" == redis ]] && ((CACHE_FILL > 0)); then
    # The logins (Argon2 each) before the scenario, so their memory is not its peak.
    log "redis: $CACHE_FILL logins for me-many"
    "$REVOCATION_BIN" sessions --a "$BASE" --b "$BASE" --count "$CACHE_FILL" \
      --out "$WORK/many-tokens" >&2 || die "the logins for me-many failed"
    settle
    scenario "$store" me-many load_me_many
  fi
  RES["$store.end_rss"]="$(status_kib "$SERVER_PID" VmRSS)"

  stop_pid "$SERVER_PID"
  SERVER_PID=""
  if [[ "$store" == redis ]]; then
    stop_pid "$REDIS_PID"
    REDIS_PID=""
  fi
}

# Revocation across two replicas, and the link cuts (see the header and
# server/benches/revocation.rs): a fresh Redis, replicas A and B on it, a paced GET /me
# load on both, then the revocation client. Its REVOCATION lines land in $WORK/revocation.
run_revocation() {
  start_redis
  local url="redis://127.0.0.1:$REDIS_PORT"
  start_server replica-a "$url"
  A_PID=$SERVER_PID A_BASE=$BASE SERVER_PID=""
  start_server replica-b "$url"
  B_PID=$SERVER_PID B_BASE=$BASE SERVER_PID=""
  local sessions=$((REVOCATION_TRIALS + 2 * LINK_CUTS))
  log "revocation: $sessions logins for as many sessions (Argon2 each)"
  "$REVOCATION_BIN" sessions --a "$A_BASE" --b "$B_BASE" --count "$sessions" \
    --out "$WORK/revocation-tokens" >&2 || die "the revocation client could not log in"
  local token
  BASE="$A_BASE"
  token="$(login | json_field access_token)"
  [[ -n "$token" ]] || die "login failed"
  echo 5 >"/proc/$A_PID/clear_refs" 2>/dev/null || true
  echo 5 >"/proc/$B_PID/clear_refs" 2>/dev/null || true
  # The load runs until it is stopped below; its rate during the trials is read from the
  # replicas' /metrics by the client.
  local base
  for base in "$A_BASE" "$B_BASE"; do
    env ACCESS_TOKEN="$token" BENCH_DELAY_MS="$REVOCATION_LOAD_DELAY_MS" \
      wrk -t1 -c"$REVOCATION_LOAD_CONNS" -d1h --timeout "$WRK_TIMEOUT" -s "$BENCH/me.lua" "$base/me" \
      >/dev/null 2>&1 &
    BG_PIDS+=($!)
  done
  sleep 1
  log "revocation: $REVOCATION_TRIALS trials, $LINK_CUTS pauses and $LINK_CUTS kills, under GET /me load" \
    "($REVOCATION_LOAD_CONNS conns per replica, each waiting $REVOCATION_LOAD_DELAY_MS ms before each request)"
  local status=0
  "$REVOCATION_BIN" measure --a "$A_BASE" --b "$B_BASE" --tokens "$WORK/revocation-tokens" \
    --redis "127.0.0.1:$REDIS_PORT" --redis-pid "$REDIS_PID" --trials "$REVOCATION_TRIALS" \
    --cuts "$LINK_CUTS" --staleness "$CACHE_STALENESS" >"$WORK/revocation" 2>&1 || status=$?
  grep -v '^REVOCATION ' "$WORK/revocation" >&2 || true
  ((status == 0)) || die "the revocation client failed"
  RES[revocation.hwm_a]="$(status_kib "$A_PID" VmHWM)"
  RES[revocation.hwm_b]="$(status_kib "$B_PID" VmHWM)"
  local pid
  for pid in "${BG_PIDS[@]}"; do stop_pid "$pid"; done
  BG_PIDS=()
  stop_pid "$A_PID"
  stop_pid "$B_PID"
  A_PID="" B_PID=""
  stop_pid "$REDIS_PID"
  REDIS_PID=""
}

# rev <kind> <key>: a value from the revocation client's REVOCATION lines ("" if absent).
rev() {
  grep "^REVOCATION kind=$1 " "$WORK/revocation" 2>/dev/null | tail -n1 | tr ' ' '\n' |
    sed -n "s/^$2=//p"
}
# Microseconds (possibly negative) -> milliseconds with two decimals.
msec() {
  if [[ "$1" =~ ^-?[0-9]+$ ]]; then
    awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'
  else
    echo "-"
  fi
}

LOAD_BEFORE="$(sed 's/^\([^ ]* [^ ]* [^ ]*\).*/\1/' /proc/loadavg)"
log "load average (1, 5, 15 min): $LOAD_BEFORE"
RUN_STARTED=$SECONDS
for store in $STORES; do run_store "$store"; done
has_store() { [[ " $STORES " == *" $1 "* ]]; }
if has_store redis && [[ "$REVOCATION" != 0 ]]; then
  run_revocation
fi

# --- report --------------------------------------------------------------------------------
LOAD_AFTER="$(sed 's/^\([^ ]* [^ ]* [^ ]*\).*/\1/' /proc/loadavg)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
verdict() { if [[ "$1" == 1 ]]; then echo "met"; else echo "MISSED"; fi; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
CPU_MODEL="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
MACHINE="$(nproc) cores (${CPU_MODEL:-unknown CPU}), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
RUN_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
RUN_MINUTES="$(awk -v s="$((SECONDS - RUN_STARTED))" 'BEGIN { printf "%.1f", s / 60 }')"
REV_RAN=0
[[ -s "$WORK/revocation" ]] && REV_RAN=1

echo
echo "jwt-todo benchmark, $RUN_DATE, $MACHINE; $RUN_MINUTES min after the build"
echo "wrk: keep-alive, $CONNS connections, $THREADS threads, $DURATION per scenario (me+storm: $STORM_CONNS + $STORM_CONNS);" \
  "load generator, server and Redis share the machine; load average before $LOAD_BEFORE, after $LOAD_AFTER"
echo "ceiling: a bare poem-openapi GET /me (server/benches/bare_server.rs: the same JWT check, no store, no middleware), measured with the same wrk script just before each store's scenarios; 'ceiling' = req/s / that store's ceiling"
echo "login throttling is on with LOGIN_PAIR_LIMIT=LOGIN_CLIENT_LIMIT=$BENCH_LOGIN_LIMIT per 15 min (defaults 5 and 100), so none of the benchmark's logins, all from 127.0.0.1, is refused by it (429s would show as errors)"
echo "per-user limits are on with TODO_CREATE_LIMIT=1000000 per 1s, MAX_TODOS_PER_USER=10000000 and MAX_SESSIONS_PER_USER=1000000 (defaults 60 per minute, 10000 and 50), so one benchmark user is never refused or evicted"
if has_store redis; then
  echo "session cache (Redis servers): SESSION_CACHE_STALENESS=$CACHE_STALENESS, SESSION_CACHE_CAPACITY=$CACHE_CAPACITY"
fi
echo
for store in $STORES; do
  echo "$store me+storm: ${RES[$store.storm_note]}"
done
if has_store redis; then
  echo "redis-benchmark -t get,set -c $CONNS -n 200000 (same Redis): GET $REDIS_GET req/s, SET $REDIS_SET req/s"
  echo "ratio to the redis-benchmark GET rate: me $(ratio "${RES[redis.me.rps]}" "$REDIS_GET")%," \
    "todo $(ratio "${RES[redis.todo.rps]}" "$REDIS_GET")%, refresh $(ratio "${RES[redis.refresh.rps]}" "$REDIS_GET")%"
fi
for store in $STORES; do
  echo "$store: server peak RSS over the run $(mib "${RES[$store.peak]}") MiB"
done
if has_store embedded; then
  echo "embedded: the server is the store, so its RSS holds the ${RES[embedded.todo.ok]} todos the run created"
fi
if ((REV_RAN)); then
  echo
  echo "revocation (two replicas on one Redis; full output above):"
  echo "  load during the trials: A $(rev trials load_a) req/s, B $(rev trials load_b) req/s" \
    "($REVOCATION_LOAD_CONNS conns per replica, each waiting $REVOCATION_LOAD_DELAY_MS ms before each request)"
  echo "  replicas' peak RSS: A $(mib "${RES[revocation.hwm_a]}") MiB, B $(mib "${RES[revocation.hwm_b]}") MiB"
  if [[ "$(rev config cache)" != 1 ]]; then
    echo "  cache metrics absent on B: no session cache, so these are the no-cache baseline (every request asks Redis)"
  fi
fi

# read_ratio <store>: RR, RP, RE = the read's ratio to the ceiling, p99 and errors: the
# medians of the alternating rounds when they ran, else the single `me` scenario's; RW says which.
read_ratio() {
  if [[ -n "${RES[$1.rounds.ratio]:-}" ]]; then
    RR="${RES[$1.rounds.ratio]}" RP="${RES[$1.rounds.p99]}" RE="${RES[$1.rounds.errors]}"
    RW="; median of $READ_ROUNDS alternating rounds: ${RES[$1.rounds.list]}"
  else
    RR="${RES[$1.me.ratio]}" RP="${RES[$1.me.p99]}" RE="${RES[$1.me.errors]}" RW=""
  fi
}

echo
echo "targets:"
if has_store redis; then
  ok=0
  if ((100 * ${RES[redis.me.rps]} >= 70 * REDIS_GET)) && lt "${RES[redis.me.p99]}" 4 && ((${RES[redis.me.errors]} == 0)); then
    ok=1
  fi
  echo "  read over Redis >= 70% of GET, p99 < 4 ms, 0 errors: $(verdict $ok)" \
    "($(ratio "${RES[redis.me.rps]}" "$REDIS_GET")%, ${RES[redis.me.p99]} ms, ${RES[redis.me.errors]} errors)"
  for s in refresh todo; do
    ok=0
    ((100 * ${RES[redis.$s.rps]} >= 40 * REDIS_GET)) && ((${RES[redis.$s.errors]} == 0)) && ok=1
    echo "  $s over Redis >= 40% of GET, 0 errors: $(verdict $ok) ($(ratio "${RES[redis.$s.rps]}" "$REDIS_GET")%, ${RES[redis.$s.errors]} errors)"
  done
  read_ratio redis
  ok=0
  if ge "$RR" 0.8 && lt "$RP" 3 && ((RE == 0)); then
    ok=1
  fi
  echo "  read over Redis >= 0.8 of the ceiling, p99 < 3 ms, 0 errors (issue 16): $(verdict $ok)" \
    "($RR, $RP ms, $RE errors$RW)"
fi
if has_store embedded; then
  read_ratio embedded
  ok=0
  ge "$RR" 0.85 && ((RE == 0)) && ok=1
  echo "  read over the embedded store >= 0.85 of the ceiling, 0 errors (issue 16): $(verdict $ok)" \
    "($RR, $RE errors$RW)"
fi
if ((REV_RAN)); then
  p99="$(rev trials p99_us)" late="$(rev trials late)" stale_late="$(rev trials stale_late)" bound="$(rev config bound_us)"
  ok=0
  ((p99 < 5000 && late == 0 && stale_late == 0)) && ok=1
  echo "  revocation A -> B: p99 < 5 ms and none later than the bound ($(msec "$bound")) (issue 16): $(verdict $ok)" \
    "(p99 $(msec "$p99"); $late trials' 401 arrived later, $stale_late got a 200 for a request sent later)"
  beyond="$(rev pause beyond_bound)"
  if [[ -n "$beyond" ]]; then
    ok=0
    ((beyond == 0)) && ok=1
    echo "  Redis paused: nothing served from the cache later than the bound (issue 16): $(verdict $ok)" \
      "(last 200 sent at most $(msec "$(rev pause last_ok_max_us)") after the pause)"
  fi
fi
for store in $STORES; do
  idle="${RES[$store.me.p99]}" storm="${RES[$store.me+storm.p99]}"
  ok=0
  awk -v s="$storm" -v i="$idle" 'BEGIN { exit !(s <= 2 * i) }' && ok=1
  echo "  $store: read p99 during a login storm (32 conns) <= 2x idle (64 conns): $(verdict $ok) ($storm ms vs $idle ms)"
done
for store in $STORES; do
  ok=0
  ((${RES[$store.peak]} < 64 * 1024)) && ok=1
  echo "  $store: peak RSS < 64 MiB: $(verdict $ok) ($(mib "${RES[$store.peak]}") MiB)"
done
for store in $STORES; do
  # By the last scenario every kind of request has run: buffers, connections and the
  # Argon2 matrices exist. Growth across it would be a leak.
  r0="${RES[$store.me+storm.rss0]}" r1="${RES[$store.me+storm.rss1]}"
  ok=0
  ((r1 - r0 < 1024)) && ok=1
  note=""
  if [[ "$store" == embedded ]]; then
    note="; the embedded store keeps the ${RES[$store.storm_logins]} sessions these logins opened, in the process"
  fi
  echo "  $store: no RSS growth in steady state (across me+storm, < 1 MiB): $(verdict $ok)" \
    "($(mib "$r0") -> $(mib "$r1") MiB; whole run $(mib "${RES[$store.start_rss]}") -> $(mib "${RES[$store.end_rss]}") MiB$note)"
done

# --- summary, in markdown for the README ---------------------------------------------------
echo
echo "## Summary (markdown, for the README)"
echo
echo "Printed on $RUN_DATE by \`BENCH_DURATION=$DURATION bench/run.sh\` on $MACHINE;" \
  "load generator, servers and Redis on the same machine; load average before the run $LOAD_BEFORE."
echo
echo "| store    | scenario |    req/s | ceiling |       p50 |        p99 | errors |   peak RSS | RSS start -> end    |"
echo "|----------|----------|---------:|--------:|----------:|-----------:|-------:|-----------:|---------------------|"
printf '%s\n' "${ROWS[@]}"
for store in $STORES; do
  if [[ -n "${RES[$store.rounds.ratio]:-}" ]]; then
    echo
    echo "$store \`me\` against the ceiling in $READ_ROUNDS alternating rounds (me/ceiling req/s: ${RES[$store.rounds.detail]}): ratios ${RES[$store.rounds.list]}, median ${RES[$store.rounds.ratio]}, median p99 ${RES[$store.rounds.p99]} ms, ${RES[$store.rounds.errors]} errors."
  fi
done
if ((${#CACHE_ROWS[@]})); then
  echo
  echo "Session cache over Redis, during each scenario (from /metrics; staleness $CACHE_STALENESS, capacity $CACHE_CAPACITY):"
  echo
  echo "| scenario |       hits |     misses | hit rate | entries | live |"
  echo "|----------|-----------:|-----------:|---------:|--------:|-----:|"
  printf '%s\n' "${CACHE_ROWS[@]}"
fi
if ((REV_RAN)); then
  bound="$(rev config bound_us)"
  echo
  echo "Revocation across two replicas: $(rev trials n) logouts on A, each timed from A's 200 to B's first 401," \
    "under GET /me load on both (A $(rev trials load_a), B $(rev trials load_b) req/s);" \
    "bound = staleness $(msec "$(rev config staleness_us)") + heartbeat interval $(msec "$(rev config heartbeat_us)") = $(msec "$bound")$(
      [[ "$(rev config cache)" == 1 ]] || echo "; no session cache on these servers (baseline)"):"
  echo
  echo "| measure | p50 | p90 | p99 | p99.9 | max | later than the bound |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  echo "| B's first 401, arrival | $(msec "$(rev trials p50_us)") | $(msec "$(rev trials p90_us)") | $(msec "$(rev trials p99_us)") | $(msec "$(rev trials p999_us)") | $(msec "$(rev trials max_us)") | $(rev trials late) |"
  echo "| that request, sent | $(msec "$(rev trials sent_p50_us)") | | $(msec "$(rev trials sent_p99_us)") | | $(msec "$(rev trials sent_max_us)") | |"
  echo
  if [[ "$(rev trials stale)" == 0 ]]; then
    echo "Stale 200s from B after A's 200: none."
  else
    echo "Stale 200s from B after A's 200: $(rev trials stale) trials, the last sent $(msec "$(rev trials stale_max_us)") after it; $(rev trials stale_late) later than the bound."
  fi
  echo
  echo "| link cut ($LINK_CUTS each) | min | median | max |"
  echo "|---|---:|---:|---:|"
  echo "| Redis paused: last 200 from B, sent after the pause | $(msec "$(rev pause last_ok_min_us)") | $(msec "$(rev pause last_ok_median_us)") | $(msec "$(rev pause last_ok_max_us)") |"
  echo "| Redis paused: first non-200, sent after the pause (< 0: in flight at the pause) | $(msec "$(rev pause first_not_ok_min_us)") | $(msec "$(rev pause first_not_ok_median_us)") | $(msec "$(rev pause first_not_ok_max_us)") |"
  echo "| SIGCONT: B answers 200 again after | $(msec "$(rev pause recover_min_us)") | $(msec "$(rev pause recover_median_us)") | $(msec "$(rev pause recover_max_us)") |"
  if [[ "$(rev kill n)" =~ ^[1-9] ]]; then
    echo "| CLIENT KILL: B's cache entries 0 after | $(msec "$(rev kill empty_min_us)") | $(msec "$(rev kill empty_median_us)") | $(msec "$(rev kill empty_max_us)") |"
    echo "| CLIENT KILL: live 0 after | $(msec "$(rev kill dead_min_us)") | $(msec "$(rev kill dead_median_us)") | $(msec "$(rev kill dead_max_us)") |"
    echo "| CLIENT KILL: live 1 again after | $(msec "$(rev kill live_min_us)") | $(msec "$(rev kill live_median_us)") | $(msec "$(rev kill live_max_us)") |"
    echo
    echo "After CLIENT KILL, never seen on B's /metrics: entries 0 after $(rev kill never_empty) cuts, live 0 after $(rev kill never_dead) (a relink within one poll), live 1 again within 10 s after $(rev kill never_back)."
  else
    echo "| CLIENT KILL of jwt-todo-tracking | skipped: $(rev kill skipped) | | |"
  fi
fi
