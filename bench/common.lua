-- Shared by the scenario scripts (loaded with dofile): counts every answer outside 2xx
-- per wrk thread, and prints one machine-readable line when wrk is done, which
-- bench/run.sh parses:
--   BENCH requests=<n> duration_us=<n> p50_us=<n> p99_us=<n> non2xx=<n> socket_errors=<n>
--     statuses=<status>:<count>,... (the answers outside 2xx, by status)

local threads = {}

-- Called in wrk's main Lua state once per thread, before the threads start. A scenario
-- that needs per-thread data defines setup_thread(thread, index).
function setup(thread)
  table.insert(threads, thread)
  if setup_thread then
    setup_thread(thread, #threads)
  end
end

-- Per thread: every thread runs in a Lua state of its own.
non2xx = 0
statuses = {}

function count_status(status)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function response(status, headers, body)
  count_status(status)
end

function done(summary, latency, requests)
  local bad, by_status = 0, {}
  for _, thread in ipairs(threads) do
    bad = bad + (tonumber(thread:get("non2xx")) or 0)
    for status, n in pairs(thread:get("statuses") or {}) do
      by_status[status] = (by_status[status] or 0) + n
    end
  end
  local detail = {}
  for status, n in pairs(by_status) do
    table.insert(detail, string.format("%d:%d", status, n))
  end
  table.sort(detail)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d statuses=%s\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    bad, e.connect + e.read + e.write + e.timeout, table.concat(detail, ",")))
end

-- Token files (me-many.lua, refresh.lua). In wrk's main state: the lines of the file named
-- by BENCH_TOKENS, read once.
local token_file = nil
function bench_tokens()
  if token_file == nil then
    token_file = {}
    local path = assert(os.getenv("BENCH_TOKENS"), "BENCH_TOKENS unset")
    for line in io.lines(path) do
      if line ~= "" then table.insert(token_file, line) end
    end
  end
  return token_file
end

-- In wrk's main state: thread `index`'s share of `tokens[1..last]` (every WRK_THREADS-th,
-- from `index`), as a list.
function thread_share(tokens, index, last)
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
  local mine = {}
  for i = index, last, nthreads do
    table.insert(mine, tokens[i])
  end
  return mine
end

-- A list of tokens across to a thread's own Lua state (thread:set takes strings), and back.
function pack_tokens(list) return table.concat(list, "\n") end
function unpack_tokens(packed)
  local list = {}
  for token in string.gmatch(packed or "", "[^\n]+") do
    table.insert(list, token)
  end
  return list
end
