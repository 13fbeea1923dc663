-- KEYS: user record, pending reset code, sessions, login challenges, then the session key
-- of each member read just before. ARGV: the user record as read, the record with the new
-- password, the presented digest (hex), now (unix s), then the sid of each of those
-- session keys.
-- Returns {'none'}, {'wrong', attempts left}, {'changed'} (the code matched but the
-- record is not the one read: nothing done, nothing counted), {'retry'} (the index holds
-- a member not declared: read again), or {'done', sessions ended}: the record replaced,
-- the code spent, every session and pending login challenge ended. The spent code presented again (a retry whose
-- reply was lost) answers {'done', 0} and changes nothing.
local stored = redis.call('GET', KEYS[1])
if not stored then return {'none'} end
local tried, detail = try_digest(KEYS[2], ARGV[3], ARGV[4])
if tried == 'spent' then
  if detail then return {'done', 0} end
  return {'none'}
end
if tried == 'wrong' then return {'wrong', detail} end
if tried ~= 'right' then return {'none'} end
if stored ~= ARGV[1] then return {'changed'} end
local declared = {}
for i = 5, #KEYS do declared[ARGV[i]] = true end
for _, sid in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if not declared[sid] then return {'retry'} end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'spent', 1)
local ended = 0
for i = 5, #KEYS do ended = ended + redis.call('DEL', KEYS[i]) end
redis.call('DEL', KEYS[3], KEYS[4])
return {'done', ended}
