-- KEYS: due, messages. ARGV: now, lease end. Leases the oldest due message.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
if #ids == 0 then return false end
local body = redis.call('HGET', KEYS[2], ids[1])
if not body then
  redis.call('ZREM', KEYS[1], ids[1])
  return false
end
redis.call('ZADD', KEYS[1], ARGV[2], ids[1])
return body
