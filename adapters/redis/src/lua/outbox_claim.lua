-- KEYS: due, ready, messages, rounds, round. ARGV: now, lease end, batch.
--
-- Fair claiming, round robin over users. A message due by `now` moves from `due` into
-- `ready`, scored by a round: one more than the later of the current round and its user's
-- last round. So a user with a thousand messages holds rounds far ahead, and another
-- user's message lands in the next round and is claimed after at most one message of each
-- user ahead of it. At most `batch` messages move per claim (bounded work per call; every
-- message moves once). The first message in `ready` is leased: back into `due`, scored by
-- the lease end, so that it is claimed again if its worker dies.
local round = tonumber(redis.call('GET', KEYS[5]) or '0')
-- The user of a stored message; a record that does not parse is queued as nobody's
-- (and reported corrupt when it is claimed), never stops the queue.
local function owner(body)
  local ok, record = pcall(cjson.decode, body)
  return ok and type(record) == 'table' and tostring(record['user_id']) or '?'
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))) do
  redis.call('ZREM', KEYS[1], id)
  local body = redis.call('HGET', KEYS[3], id)
  if body then
    local user = owner(body)
    local r = math.max(round, tonumber(redis.call('HGET', KEYS[4], user) or '0')) + 1
    redis.call('HSET', KEYS[4], user, r)
    redis.call('ZADD', KEYS[2], r, id)
  end
end
while true do
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if #first == 0 then return false end
  local id, r = first[1], tonumber(first[2])
  redis.call('ZREM', KEYS[2], id)
  redis.call('SET', KEYS[5], r)
  local body = redis.call('HGET', KEYS[3], id)
  if body then
    local user = owner(body)
    -- The user's last round served: they have nothing else ready.
    if tonumber(redis.call('HGET', KEYS[4], user)) == r then redis.call('HDEL', KEYS[4], user) end
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    return body
  end
end
