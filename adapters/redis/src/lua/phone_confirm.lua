-- KEYS: user record, pending code. ARGV: the user record as read, the same with the phone
-- verified, the presented digest (hex), now (unix s), the user's current number ('' for
-- none), '1' if that number is verified already.
-- Returns {'changed'} (nothing done: the user record changed since it was read: read it
-- again), {'verified'}, {'wrong', attempts left} or {'none'}.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'changed'} end
local phone, digest, expires_at, attempts, max_attempts, spent = unpack(redis.call('HMGET',
  KEYS[2], 'phone', 'digest', 'expires_at', 'attempts', 'max_attempts', 'spent'))
if not phone or phone ~= ARGV[5] or tonumber(ARGV[4]) >= tonumber(expires_at) then
  return {'none'}
end
-- Digests are compared without an early exit, so timing tells nothing about how much of
-- one matched.
local diff = #digest == #ARGV[3] and 0 or 1
for i = 1, math.min(#digest, #ARGV[3]) do
  diff = bit.bor(diff, bit.bxor(string.byte(digest, i), string.byte(ARGV[3], i)))
end
if spent == '1' then
  -- Spent: only a retry of the confirmation that spent it, on the still verified number.
  if diff == 0 and ARGV[6] == '1' then return {'verified'} end
  return {'none'}
end
attempts, max_attempts = tonumber(attempts), tonumber(max_attempts)
if attempts >= max_attempts then return {'none'} end
if diff == 0 then
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('HSET', KEYS[2], 'spent', 1)
  return {'verified'}
end
attempts = attempts + 1
redis.call('HSET', KEYS[2], 'attempts', attempts)
return {'wrong', max_attempts - attempts}
