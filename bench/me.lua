-- Authenticated read: GET /me with one access token (ACCESS_TOKEN), on every connection.
-- BENCH_DELAY_MS > 0 paces it: each connection waits that long before each request (the
-- background load of the revocation measurement); unset or 0, requests go back to back.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "GET"
wrk.path = "/me"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("ACCESS_TOKEN"), "ACCESS_TOKEN unset")

local pace = tonumber(os.getenv("BENCH_DELAY_MS") or "") or 0
if pace > 0 then
  function delay()
    return pace
  end
end
