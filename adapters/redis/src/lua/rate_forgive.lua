-- KEYS: counter. Takes back one event it counts, never below zero; the window (and its
-- expiry) stays as it is.
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return 0
