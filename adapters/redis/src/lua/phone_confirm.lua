-- KEYS: user record, pending code. ARGV: the user record as read, the same with the phone
-- verified, the presented digest (hex), now (unix s), the user's current number ('' for
-- none), '1' if that number is verified already.
-- Returns {'changed'} (nothing done: the user record changed since it was read: read it
-- again), {'verified'}, {'wrong', attempts left} or {'none'}.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'changed'} end
local phone = redis.call('HGET', KEYS[2], 'phone')
-- The code proves only the number it was texted to.
if not phone or phone ~= ARGV[5] then return {'none'} end
local tried, detail = try_digest(KEYS[2], ARGV[3], ARGV[4])
if tried == 'spent' then
  -- Only a retry of the confirmation that spent it, on the still verified number.
  if detail and ARGV[6] == '1' then return {'verified'} end
  return {'none'}
end
if tried == 'wrong' then return {'wrong', detail} end
if tried == 'right' then
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('HSET', KEYS[2], 'spent', 1)
  return {'verified'}
end
return {'none'}
