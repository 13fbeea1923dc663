-- KEYS: idempotency record. ARGV: fingerprint, resource id, lifetime (ms).
-- Stores the record unless the key holds one; returns the record the key holds now.
if redis.call('HSETNX', KEYS[1], 'fingerprint', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'resource', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return redis.call('HMGET', KEYS[1], 'fingerprint', 'resource')
