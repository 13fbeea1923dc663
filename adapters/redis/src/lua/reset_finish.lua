-- KEYS: user record, pending reset code, sessions, then the session key of each member
-- read just before. ARGV: the user record as read, the record with the new password, the
-- presented digest (hex), now (unix s), then the sid of each of those session keys.
-- Returns {'none'}, {'wrong', attempts left}, {'changed'} (the code matched but the
-- record is not the one read: nothing done, nothing counted), {'retry'} (the index holds
-- a member not declared: read again), or {'done', sessions ended}: the record replaced,
-- the code spent, every session ended. The spent code presented again (a retry whose
-- reply was lost) answers {'done', 0} and changes nothing.
local stored = redis.call('GET', KEYS[1])
if not stored then return {'none'} end
local digest, expires_at, attempts, max_attempts, spent = unpack(redis.call('HMGET',
  KEYS[2], 'digest', 'expires_at', 'attempts', 'max_attempts', 'spent'))
if not digest or tonumber(ARGV[4]) >= tonumber(expires_at) then return {'none'} end
-- Digests are compared without an early exit, so timing tells nothing about how much of
-- one matched.
local diff = #digest == #ARGV[3] and 0 or 1
for i = 1, math.min(#digest, #ARGV[3]) do
  diff = bit.bor(diff, bit.bxor(string.byte(digest, i), string.byte(ARGV[3], i)))
end
if spent == '1' then
  if diff == 0 then return {'done', 0} end
  return {'none'}
end
attempts, max_attempts = tonumber(attempts), tonumber(max_attempts)
if attempts >= max_attempts then return {'none'} end
if diff ~= 0 then
  attempts = attempts + 1
  redis.call('HSET', KEYS[2], 'attempts', attempts)
  return {'wrong', max_attempts - attempts}
end
if stored ~= ARGV[1] then return {'changed'} end
local declared = {}
for i = 4, #KEYS do declared[ARGV[i + 1]] = true end
for _, sid in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if not declared[sid] then return {'retry'} end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'spent', 1)
local ended = 0
for i = 4, #KEYS do ended = ended + redis.call('DEL', KEYS[i]) end
redis.call('DEL', KEYS[3])
return {'done', ended}
