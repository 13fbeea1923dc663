-- KEYS: user record, TOTP factor. ARGV: sealed secret, expiry of the enrolment (unix s).
-- Makes the secret the user's pending factor, replacing a pending one: 'pending';
-- 'enabled' (changing nothing) when a factor is enabled; 'gone' when the user is.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
if redis.call('HGET', KEYS[2], 'enabled') == '1' then return 'enabled' end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'sealed', ARGV[1], 'enabled', '0')
redis.call('EXPIREAT', KEYS[2], ARGV[2])
return 'pending'
