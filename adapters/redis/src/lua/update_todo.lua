-- KEYS: todos. ARGV: todo id, JSON. Keeps the insertion number. Returns 1 if it existed.
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
local seq = string.match(old, '^(%d+)|')
redis.call('HSET', KEYS[1], ARGV[1], seq .. '|' .. ARGV[2])
return 1
