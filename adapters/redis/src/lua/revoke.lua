-- KEYS: session, sessions. ARGV: sid. Returns 1 if the session existed.
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
