-- KEYS: user record, sessions, then the user's other fixed keys (todos, counters, codes),
-- then the session key of each member of `sessions` read just before. ARGV: the user
-- record as read, the number of fixed keys after `sessions`, then the sid of each of
-- those session keys.
-- Deletes every one of them in one step. Returns {'gone'} or {'changed'} (the record is
-- not the one read), {'retry'} (the index holds a member the caller did not declare: a
-- login in between; read again), all changing nothing, or {'done'}.
local stored = redis.call('GET', KEYS[1])
if not stored then return {'gone'} end
if stored ~= ARGV[1] then return {'changed'} end
local first_session = 3 + tonumber(ARGV[2])
local declared = {}
for i = first_session, #KEYS do declared[ARGV[i - first_session + 3]] = true end
for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if not declared[sid] then return {'retry'} end
end
for i = 1, #KEYS do redis.call('DEL', KEYS[i]) end
return {'done'}
