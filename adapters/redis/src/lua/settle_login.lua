-- KEYS: pair failures, client failures, pair holds, client holds.
-- ARGV: 'failed' | 'succeeded' | 'unjudged', attempt id, pair window (ms), client window
-- (ms). Releases the attempt's hold; a failure is counted in both windows only if the
-- hold was still there, so settling twice (or after the hold lapsed) counts nothing
-- twice; a success clears the pair's failures. Returns how many holds were released.
local released = redis.call('ZREM', KEYS[3], ARGV[2]) + redis.call('ZREM', KEYS[4], ARGV[2])
if ARGV[1] == 'failed' and released > 0 then
  for i = 1, 2 do
    if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[i + 2]) end
  end
elseif ARGV[1] == 'succeeded' then
  redis.call('DEL', KEYS[1])
end
return released
