-- KEYS: username. ARGV: user id. Makes a claim permanent if it is still ours (or claims
-- the name again if the claim lapsed and nobody took it): 1, else 0.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PERSIST', KEYS[1])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
