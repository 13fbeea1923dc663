-- KEYS: TOTP factor, recovery codes. ARGV: sealed secret, step of the first code, then the
-- digest (hex) of each recovery code.
-- Enables the pending factor if it is still this secret: 1; else 0, changing nothing.
if redis.call('HGET', KEYS[1], 'enabled') ~= '0'
  or redis.call('HGET', KEYS[1], 'sealed') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'enabled', '1', 'last_step', ARGV[2])
redis.call('PERSIST', KEYS[1])
redis.call('DEL', KEYS[2])
for i = 3, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
return 1
