-- Create todo: POST /todo with one access token (ACCESS_TOKEN), on every connection.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "POST"
wrk.path = "/todo"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("ACCESS_TOKEN"), "ACCESS_TOKEN unset")
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"benchmark todo"}'
