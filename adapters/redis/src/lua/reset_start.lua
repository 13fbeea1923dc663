-- KEYS: user record, pending reset code. ARGV: the code's digest (hex), expiry (unix s),
-- attempts allowed. Makes it the user's one pending reset code, replacing any earlier
-- one: 1, or 0 (storing nothing) when the user does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'digest', ARGV[1], 'expires_at', ARGV[2], 'attempts', 0,
  'max_attempts', ARGV[3], 'spent', 0)
redis.call('EXPIREAT', KEYS[2], ARGV[2])
return 1
