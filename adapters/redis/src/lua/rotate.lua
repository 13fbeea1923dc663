-- KEYS: session, sessions, and the user's event stream when the rotation is to be in the
-- trail. ARGV: sid, presented, next, now, expires_at, grace seconds, then (with the
-- stream) the `refreshed` event as `append_event` (audit_prelude.lua) takes it.
-- Returns 0 = not found, 1 = reuse detected (session deleted), or
-- {'rotated' | 'replayed', the session's fields}. The event is appended only by the
-- rotation itself, in the same step: never by a replay or by the retry below.
-- Running it again with the same arguments (a driver's retry) answers 'rotated' again:
-- the rotation it made is recognised by its `next`.
local current = redis.call('HGET', KEYS[1], 'refresh_jti')
if not current then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if current == ARGV[3] and redis.call('HGET', KEYS[1], 'previous_jti') == ARGV[2] then
  return {'rotated', session_fields(KEYS[1])}
end
if current ~= ARGV[2] then
  if replays_last(KEYS[1], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[6])) then
    -- One replay per lost answer; the grace window needs no mark.
    redis.call('HDEL', KEYS[1], 'unanswered')
    return {'replayed', session_fields(KEYS[1])}
  end
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
redis.call('HSET', KEYS[1], 'refresh_jti', ARGV[3], 'previous_jti', ARGV[2],
  'refreshed_at', ARGV[4], 'expires_at', ARGV[5])
redis.call('HDEL', KEYS[1], 'unanswered')
redis.call('EXPIREAT', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
extend(KEYS[2], ARGV[5])
prune(KEYS[2], ARGV[4])
if KEYS[3] then append_event(KEYS[3], nil, 7) end
return {'rotated', session_fields(KEYS[1])}
