-- KEYS: user record, login challenges. ARGV: the challenge's digest (hex), its expiry
-- (unix s), the login's user agent, now (unix s), challenges a user may hold.
-- Stores the challenge as '<expiry>|<user agent>', dropping expired ones, and the oldest
-- when the user holds as many as they may: 1; 0 (storing nothing) when the user is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local now = tonumber(ARGV[4])
local all = redis.call('HGETALL', KEYS[2])
local live, oldest, oldest_at = 0, nil, nil
for i = 1, #all, 2 do
  local at = tonumber(string.match(all[i + 1], '^(%d+)'))
  if not at or at <= now then
    redis.call('HDEL', KEYS[2], all[i])
  else
    live = live + 1
    if not oldest_at or at < oldest_at then oldest, oldest_at = all[i], at end
  end
end
if oldest and live >= tonumber(ARGV[5]) then redis.call('HDEL', KEYS[2], oldest) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
-- The hash lives as long as its last challenge.
extend(KEYS[2], ARGV[2])
return 1
