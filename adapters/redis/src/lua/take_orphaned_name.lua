-- KEYS: username. ARGV: the holder found (whose user record is gone), our user id, claim
-- lifetime (ms). Claims the name for us, with an expiry as `SET NX PX` would, if it is
-- still held for good by that holder: 1, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
