#!/usr/bin/env bash
# End-to-end benchmark of the release server with wrk, over both stores.
#
#   bench/run.sh                       every scenario, 10 s each, both stores
#   BENCH_DURATION=120s bench/run.sh   longer runs (wrk durations: 30s, 2m, ...)
#   BENCH_STORES=redis bench/run.sh    one store only (embedded | redis)
#
# Installs what it lacks (wrk, redis-server, redis-tools, curl; Debian apt, without
# starting a system Redis), builds `cargo build --release --locked -p server`, and for each
# store starts the server on a free 127.0.0.1 port: (a) the embedded store, (b) a
# redis-server of its own on a free port (`--save '' --appendonly no`). Everything it
# starts is stopped when it exits, whatever happens; it ends by itself.
#
# Scenarios, each with wrk (keep-alive, 64 connections, 2 threads, fixed duration):
#   me          GET /me with one access token
#   todo        POST /todo with one access token
#   refresh     POST /token/refresh, each connection spending a rotating token of its own
#   login       POST /login (Argon2id at the OWASP parameters on every request)
#   me+storm    GET /me (32 conns) while POST /login (32 conns) runs alongside; the read's numbers
# Against the same Redis, `redis-benchmark -t get,set -c 64 -n 200000 -q`: the ceiling of one
# round trip per request, and the ratios to it.
#
# Per scenario: requests/s, p50, p99, errors (non-2xx answers + socket errors), the server's
# peak RSS during the scenario (VmHWM, reset before each scenario where the kernel allows)
# and its RSS at the start and end of the scenario.
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
ACCESS_SECRET_VALUE="bench-access-secret-0123456789abcdef0123456789"
REFRESH_SECRET_VALUE="bench-refresh-secret-0123456789abcdef012345678"
# Login throttling limits for the benchmark's server (see start_server).
BENCH_LOGIN_LIMIT=1000000

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'bench: %s\n' "$*" >&2
  exit 1
}

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

# --- cleanup: everything started here is stopped on exit ----------------------------------
WORK="$(mktemp -d /tmp/jwt-todo-bench.XXXXXX)"
SERVER_PID=""
REDIS_PID=""
declare -a BG_PIDS=()
stop_pid() {
  local pid="$1"
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${BG_PIDS[@]+"${BG_PIDS[@]}"}"; do stop_pid "$pid"; done
  stop_pid "$SERVER_PID"
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
log "building the release server (cargo build --release --locked -p server)"
(cd "$ROOT" && cargo build --release --locked -p server)
SERVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/server"
[[ -x "$SERVER_BIN" ]] || die "no server binary at $SERVER_BIN"

# --- helpers -------------------------------------------------------------------------------
# A port nothing listens on (127.0.0.1), from a random start.
free_port() {
  local port
  for _ in $(seq 200); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# JSON string field of a one-line body.
json_field() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p"; }

login() {
  curl -sS --fail -X POST "$BASE/login" -H 'Content-Type: application/json' \
    -d '{"username":"username","password":"password"}'
}

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
  [[ -n "${2:-}" ]] && env+=("REDIS_URL=$2")
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
  env BENCH_TOKENS="$WORK/refresh-tokens" WRK_THREADS="$THREADS" \
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
declare -A RES=()
OVERALL_PEAK=0

# scenario <store> <name> <function running the load into $WORK/out>
scenario() {
  local store="$1" name="$2" fn="$3"
  # Reset the peak-RSS mark to the current RSS, so that VmHWM is this scenario's peak
  # (Linux >= 4.0; without it the peak is the process's since start).
  echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || true
  local rss0 rss1 hwm
  rss0="$(status_kib "$SERVER_PID" VmRSS)"
  log "$store: $name ($DURATION)"
  "$fn"
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
  local row
  row="$(printf '| %-8s | %-8s | %8s | %6s ms | %7s ms | %6s | %6s MiB | %5s -> %5s MiB |' \
    "$store" "$name" "$R_RPS" "$R_P50" "$R_P99" "$R_ERRORS" "$(mib "$hwm")" "$(mib "$rss0")" "$(mib "$rss1")")"
  ROWS+=("$row")
  printf '%s   (%s)\n' "$row" "$R_ERRDETAIL" >&2
}

load_me() { run_wrk "$WORK/out" "$CONNS" "$DURATION" me.lua /me; }
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

  RES["$store.start_rss"]="$(status_kib "$SERVER_PID" VmRSS)"
  scenario "$store" me load_me
  scenario "$store" todo load_todo
  scenario "$store" refresh load_refresh
  scenario "$store" login load_login
  STORM_NOTE="" STORM_LOGINS=0
  scenario "$store" me+storm load_storm
  RES["$store.storm_note"]="$STORM_NOTE"
  RES["$store.storm_logins"]="$STORM_LOGINS"
  RES["$store.end_rss"]="$(status_kib "$SERVER_PID" VmRSS)"

  stop_pid "$SERVER_PID"
  SERVER_PID=""
  if [[ "$store" == redis ]]; then
    stop_pid "$REDIS_PID"
    REDIS_PID=""
  fi
}

LOAD_BEFORE="$(sed 's/^\([^ ]* [^ ]* [^ ]*\).*/\1/' /proc/loadavg)"
log "load average (1, 5, 15 min): $LOAD_BEFORE"
for store in $STORES; do run_store "$store"; done

# --- report --------------------------------------------------------------------------------
LOAD_AFTER="$(sed 's/^\([^ ]* [^ ]* [^ ]*\).*/\1/' /proc/loadavg)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
verdict() { if [[ "$1" == 1 ]]; then echo "met"; else echo "MISSED"; fi; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
has_store() { [[ " $STORES " == *" $1 "* ]]; }

echo
echo "jwt-todo benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
echo "wrk: keep-alive, $CONNS connections, $THREADS threads, $DURATION per scenario (me+storm: $STORM_CONNS + $STORM_CONNS);" \
  "load generator, server and Redis share the machine; load average before $LOAD_BEFORE, after $LOAD_AFTER"
echo "login throttling is on with LOGIN_PAIR_LIMIT=LOGIN_CLIENT_LIMIT=$BENCH_LOGIN_LIMIT per 15 min (defaults 5 and 100), so none of the benchmark's logins, all from 127.0.0.1, is refused by it (429s would show as errors)"
echo "per-user limits are on with TODO_CREATE_LIMIT=1000000 per 1s, MAX_TODOS_PER_USER=10000000 and MAX_SESSIONS_PER_USER=1000000 (defaults 60 per minute, 10000 and 50), so one benchmark user is never refused or evicted"
echo
echo "| store    | scenario |    req/s |       p50 |        p99 | errors |   peak RSS | RSS start -> end    |"
echo "|----------|----------|---------:|----------:|-----------:|-------:|-----------:|---------------------|"
printf '%s\n' "${ROWS[@]}"
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
