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

function setup_thread(thread, index)
  local all = bench_tokens()
  thread:set("token_list", pack_tokens(thread_share(all, index, #all)))
end

local tokens = {}
local next_token = 1

function init(args)
  tokens = unpack_tokens(token_list)
end

function request()
  local token = tokens[next_token] or "none"
  next_token = next_token % math.max(#tokens, 1) + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. token })
end
