-- KEYS: todos, todo_seq, todo_order, creations counter, and the idempotency key's record
-- when the client sent one. ARGV: todo id, JSON, max todos, max creations, creation
-- window (ms), request fingerprint, key lifetime (ms).
-- Returns {'inserted'}, {'replayed', first todo's JSON}, {'key_reused'}, {'quota'} or
-- {'rate_limited', ms until the window frees}. Running it again with the same arguments
-- (a driver's retry) answers as the first run did and stores nothing twice.
if KEYS[5] then
  local kept = redis.call('HMGET', KEYS[5], 'fingerprint', 'todo')
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
if KEYS[5] then
  redis.call('HSET', KEYS[5], 'fingerprint', ARGV[6], 'todo', ARGV[2])
  redis.call('PEXPIRE', KEYS[5], ARGV[7])
end
return {'inserted'}
