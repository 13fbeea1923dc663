-- KEYS: window counters. ARGV: each counter's limit and window (ms), in KEYS' order.
-- Returns {0, 0} when every counter had room: each is counted, and a counter's window
-- starts at its first count. Else {i, ms}, counting nothing: the full counter that frees
-- last, and the milliseconds until it does (at least 1).
local full, wait = 0, 0
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      -- A counter without expiry would refuse forever: give it its window.
      ttl = tonumber(ARGV[2 * i])
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
    if full == 0 or ttl > wait then full, wait = i, math.max(ttl, 1) end
  end
end
if full > 0 then return {full, wait} end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
  end
end
return {0, 0}
