-- Refresh: POST /token/refresh where every connection spends a rotating refresh token of
-- its own, never one that another request is spending.
--
-- BENCH_TOKENS names a file of refresh tokens, one line each: one per connection plus one
-- (written by bench/run.sh from as many logins); WRK_THREADS is wrk's -t. Thread i takes
-- every WRK_THREADS-th of the first lines, and the first thread also the last one: wrk
-- calls request() once more on its first thread before the run, to check the request it
-- builds, and that call spends a token too. wrk has no per-connection hook, but a
-- keep-alive connection has exactly one request in flight and wrk calls response() for it
-- before that connection's next request(): so a thread holding as many tokens as
-- connections always has a free one.
-- request() takes a token, response() puts the new token from the 201 body back. Each
-- token chain is spent strictly one request after the other, so no refresh here is a
-- reuse. A failed refresh loses its chain: later requests of that slot then go out with
-- an invalid token and count as errors, so a broken run cannot look good.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "POST"
wrk.path = "/token/refresh"
wrk.headers["Content-Type"] = "application/json"

-- Main state: hand each thread its share of the token file.
function setup_thread(thread, index)
  local all = bench_tokens()
  local mine = thread_share(all, index, #all - 1)
  if index == 1 then
    table.insert(mine, all[#all])
  end
  thread:set("token_list", pack_tokens(mine))
end

-- Thread state.
local free = {}

function init(args)
  free = unpack_tokens(token_list)
end

function request()
  local token = table.remove(free) or "spent"
  return wrk.format(nil, nil, nil, '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  count_status(status)
  if status == 201 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then table.insert(free, token) end
  end
end
