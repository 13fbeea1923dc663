-- KEYS: todos, todo_order. ARGV: insertion number to start after (0 for the first page),
-- limit. Returns the `<seq>|<JSON>` records of at most limit + 1 todos in insertion order
-- (one more tells that a next page exists): only the page is read.
ensure_order(KEYS[1], KEYS[2])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf',
  'LIMIT', 0, tonumber(ARGV[2]) + 1)
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[1], unpack(ids))
