-- KEYS: user record, pending code. ARGV: the user record as read, the same with the new
-- number (unverified), the number, the code's digest (hex), expiry (unix s), attempts
-- allowed.
-- Returns 1, or -1 (changing nothing) when the user record changed since it was read.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'phone', ARGV[3], 'digest', ARGV[4], 'expires_at', ARGV[5],
  'attempts', 0, 'max_attempts', ARGV[6], 'spent', 0)
redis.call('EXPIREAT', KEYS[2], ARGV[5])
return 1
