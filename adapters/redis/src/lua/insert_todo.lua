-- KEYS: todos, todo_seq, todo_order, creations counter, user record, and when the client
-- sent an idempotency key, its record and the index of such records. ARGV: todo id,
-- JSON, max todos, max creations, creation window (ms), request fingerprint, key
-- lifetime (ms), key (the index's member).
-- Returns {'inserted'}, {'replayed', first todo's JSON}, {'key_reused'}, {'quota'},
-- {'rate_limited', ms until the window frees} or {'gone'} (the user was deleted: nothing
-- stored, so a request in flight during a deletion leaves nothing behind). Running it
-- again with the same arguments (a driver's retry) answers as the first run did and
-- stores nothing twice.
if redis.call('EXISTS', KEYS[5]) == 0 then return {'gone'} end
if KEYS[6] then
  local kept = redis.call('HMGET', KEYS[6], 'fingerprint', 'todo')
  if kept[1] then
    if kept[1] == ARGV[6] then return {'replayed', kept[2]} end
    return {'key_reused'}
  end
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {'inserted'} end
local made = tonumber(redis.call('GET', KEYS[4]) or '0')
if made >= tonumber(ARGV[4]) then
  local wait = redis.call('PTTL', KEYS[4])
  if wait < 0 then
    -- A counter without expiry would refuse forever: give it its window.
    wait = tonumber(ARGV[5])
    redis.call('PEXPIRE', KEYS[4], wait)
  end
  return {'rate_limited', tostring(wait)}
end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return {'quota'} end
if redis.call('INCR', KEYS[4]) == 1 then redis.call('PEXPIRE', KEYS[4], ARGV[5]) end
ensure_order(KEYS[1], KEYS[3])
local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], seq .. '|' .. ARGV[2])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
if KEYS[6] then
  redis.call('HSET', KEYS[6], 'fingerprint', ARGV[6], 'todo', ARGV[2])
  redis.call('PEXPIRE', KEYS[6], ARGV[7])
  -- Indexed by expiry, pruned as it grows: bounded by the creation rate over a lifetime.
  local time = redis.call('TIME')
  local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now_ms)
  redis.call('ZADD', KEYS[7], now_ms + tonumber(ARGV[7]), ARGV[8])
end
return {'inserted'}
