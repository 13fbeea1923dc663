-- Authenticated read: GET /me with one access token (ACCESS_TOKEN), on every connection.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "GET"
wrk.path = "/me"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("ACCESS_TOKEN"), "ACCESS_TOKEN unset")
