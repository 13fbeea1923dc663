-- KEYS: user record, sessions, login challenges, then the session key of each member read
-- just before. ARGV: the user record as read, the record with the new password, sid to
-- keep ('' for none), then the sid of each of those keys.
-- Replaces the record, drops the pending login challenges (issued on the old password)
-- and ends every session but the kept one, in one step. Returns
-- {'gone'} or {'changed'} (the record is not the one read), {'retry'} (the index holds a
-- member the caller did not declare: a login in between; read again), all changing
-- nothing, or {'done', sessions ended}.
local stored = redis.call('GET', KEYS[1])
if not stored then return {'gone'} end
if stored ~= ARGV[1] then return {'changed'} end
local declared = {}
for i = 4, #KEYS do declared[ARGV[i]] = true end
for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if sid ~= ARGV[3] and not declared[sid] then return {'retry'} end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[3])
local ended = 0
for i = 4, #KEYS do
  local sid = ARGV[i]
  if sid ~= ARGV[3] then
    ended = ended + redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[2], sid)
  end
end
return {'done', ended}
