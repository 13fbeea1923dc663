-- KEYS: session. ARGV: the presented refresh token's jti.
-- Sent right behind a rotation whose reply was lost, on the same connection, so it runs
-- after it: if that rotation (or a replay answered to it) spent the token, the session
-- remembers that the answer never reached anyone, and the next rotation presenting the
-- token gets the successor (once) instead of a theft verdict. Returns 1 if marked.
if redis.call('HGET', KEYS[1], 'previous_jti') == ARGV[1]
  and redis.call('HGET', KEYS[1], 'refresh_jti') ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'unanswered', ARGV[1])
  return 1
end
return 0
