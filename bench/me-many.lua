-- Authenticated read over many sessions: GET /me where each request carries the next of
-- many access tokens, so that a per-replica session cache fills up to its capacity (the
-- issue-16 check that peak RSS stays bounded with the cache full).
--
-- BENCH_TOKENS names a file of access tokens, one a line (bench/run.sh writes it from as
-- many logins); WRK_THREADS is wrk's -t. Thread i takes every WRK_THREADS-th token and
-- cycles through its share.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "GET"
wrk.path = "/me"

local all_tokens = nil
function setup_thread(thread, index)
  if all_tokens == nil then
    all_tokens = {}
    local path = assert(os.getenv("BENCH_TOKENS"), "BENCH_TOKENS unset")
    for line in io.lines(path) do
      if line ~= "" then table.insert(all_tokens, line) end
    end
  end
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
  local mine = {}
  for i = index, #all_tokens, nthreads do
    table.insert(mine, all_tokens[i])
  end
  thread:set("token_list", table.concat(mine, "\n"))
end

local tokens = {}
local next_token = 1

function init(args)
  for token in string.gmatch(token_list or "", "[^\n]+") do
    table.insert(tokens, token)
  end
end

function request()
  local token = tokens[next_token] or "none"
  next_token = next_token % math.max(#tokens, 1) + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. token })
end
