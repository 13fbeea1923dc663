-- KEYS: counter. ARGV: max, window (ms). Counts one event unless `max` are counted in the
-- current window. Returns 0 when counted, else the milliseconds until the window frees.
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then
  local wait = redis.call('PTTL', KEYS[1])
  if wait < 0 then
    wait = tonumber(ARGV[2])
    redis.call('PEXPIRE', KEYS[1], wait)
  end
  return math.max(wait, 1)
end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
