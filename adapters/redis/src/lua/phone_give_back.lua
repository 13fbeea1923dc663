-- KEYS: window counters. Gives one count back to each (DECR keeps the expiry; a counter
-- back at zero is deleted).
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count <= 1 then redis.call('DEL', KEYS[i]) else redis.call('DECR', KEYS[i]) end
end
return 1
