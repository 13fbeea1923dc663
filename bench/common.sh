# Shared by bench/run.sh and bench/flamegraph.sh (sourced, after `set -euo pipefail`):
# logging, the benchmark servers' secrets, free ports, stopping what was started, login.
# The sourcing script sets BENCH_NAME (the prefix of its errors) and, before `login`, BASE.

# Secrets of the servers the benchmarks start (never a deployment's).
ACCESS_SECRET_VALUE="bench-access-secret-0123456789abcdef0123456789"
REFRESH_SECRET_VALUE="bench-refresh-secret-0123456789abcdef012345678"

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2
  exit 1
}

# Stops a process started here (TERM, then KILL after 5 s) and reaps it; "" is a no-op.
stop_pid() {
  local pid="$1"
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    # A stopped process (Redis paused by the revocation client) handles SIGTERM only once
    # continued.
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

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

# The value of a string field of the JSON on stdin.
json_field() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p"; }

# The sample user's login at $BASE (development mode).
login() {
  curl -sS --fail -X POST "$BASE/login" -H 'Content-Type: application/json' \
    -d '{"username":"username","password":"password"}'
}
