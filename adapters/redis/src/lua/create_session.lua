-- KEYS: session, sessions, user record. ARGV: sid, refresh_jti, created_at, refreshed_at,
-- expires_at, user_agent, now, max sessions, amr (the methods joined by ',').
-- Returns {} when the session is stored; when the user already holds `max` sessions,
-- stores nothing and returns the ids of the oldest ones (first to expire) that must end
-- first; nil, storing nothing, when the user does not exist (deleted while the login was
-- on its way). Running it again stores the same session again (the cap is not checked
-- twice).
if redis.call('EXISTS', KEYS[3]) == 0 then return false end
prune(KEYS[2], ARGV[7])
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  local held = redis.call('ZCARD', KEYS[2])
  local max = tonumber(ARGV[8])
  if held >= max then
    return redis.call('ZRANGE', KEYS[2], 0, held - max)
  end
end
redis.call('HSET', KEYS[1], 'refresh_jti', ARGV[2], 'created_at', ARGV[3],
  'refreshed_at', ARGV[4], 'expires_at', ARGV[5], 'user_agent', ARGV[6], 'amr', ARGV[9])
redis.call('EXPIREAT', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
extend(KEYS[2], ARGV[5])
return {}
