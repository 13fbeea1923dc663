-- KEYS: sessions, then the session key of each member read just before.
-- ARGV: sid to keep ('' for none), then the sid of each of those keys.
-- Every key it touches is declared (Redis Cluster routes and checks by KEYS), all under
-- the user's hash tag. Returns -1, changing nothing, when the set holds a member the
-- caller did not declare (a login in between): read again.
local declared = {}
for i = 2, #KEYS do declared[ARGV[i]] = true end
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if sid ~= ARGV[1] and not declared[sid] then return -1 end
end
local ended = 0
for i = 2, #KEYS do
  if ARGV[i] ~= ARGV[1] then
    ended = ended + redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return ended
