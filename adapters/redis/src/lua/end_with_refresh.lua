-- KEYS: sessions, the presenting session, then the key of every other member of the set
-- read just before (scopes 'others' and 'all' only). ARGV: sid, presented jti, now,
-- grace seconds, scope ('this' | 'others' | 'all'), then the id of each of those other
-- keys. Returns -2 = no such session, -3 = reuse (the presenting session deleted, nothing
-- else), -1 = the set holds a member not declared (a login in between: read again,
-- nothing changed), else how many sessions ended.
local sid = ARGV[1]
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], sid)
  return -2
end
if not accepts(KEYS[2], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])) then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], sid)
  return -3
end
local scope = ARGV[5]
if scope == 'this' then
  redis.call('ZREM', KEYS[1], sid)
  return redis.call('DEL', KEYS[2])
end
local declared = {[sid] = true}
for i = 6, #ARGV do declared[ARGV[i]] = true end
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if not declared[member] then return -1 end
end
local ended = 0
for i = 3, #KEYS do
  ended = ended + redis.call('DEL', KEYS[i])
  redis.call('ZREM', KEYS[1], ARGV[i + 3])
end
if scope == 'all' then
  ended = ended + redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], sid)
end
return ended
