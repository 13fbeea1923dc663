-- KEYS: pair failures, client failures, pair holds, client holds.
-- ARGV: pair max, pair window (ms), client max, client window (ms), attempt id, hold (ms).
-- Failures and holds (admitted attempts not settled yet, scored by when they lapse)
-- together are held to each max. Returns 0 when admitted (a hold taken in both), else the
-- milliseconds until the fuller limit frees (the window's end if failures alone fill it,
-- else the first hold's lapse), taking nothing. Running it again for the same attempt
-- takes the same hold again.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local wait = 0
for i = 1, 2 do
  local holds = KEYS[i + 2]
  redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
  local failures = tonumber(redis.call('GET', KEYS[i]) or '0')
  local max = tonumber(ARGV[2 * i - 1])
  if failures + redis.call('ZCARD', holds) >= max then
    local frees
    if failures >= max then
      frees = redis.call('PTTL', KEYS[i])
      if frees < 0 then
        -- A counter without expiry would refuse forever: give it its window.
        frees = tonumber(ARGV[2 * i])
        redis.call('PEXPIRE', KEYS[i], frees)
      end
    else
      local first = redis.call('ZRANGE', holds, 0, 0, 'WITHSCORES')
      frees = tonumber(first[2]) - now
    end
    wait = math.max(wait, frees, 1)
  end
end
if wait > 0 then return wait end
local lapses = now + tonumber(ARGV[6])
for i = 3, 4 do
  redis.call('ZADD', KEYS[i], lapses, ARGV[5])
  redis.call('PEXPIRE', KEYS[i], ARGV[6])
end
return 0
