-- KEYS: sessions, then the key of each session to end. ARGV: the id of each of those
-- sessions. Returns how many existed.
local ended = 0
for i = 2, #KEYS do
  ended = ended + redis.call('DEL', KEYS[i])
  redis.call('ZREM', KEYS[1], ARGV[i - 1])
end
return ended
