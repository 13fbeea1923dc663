-- KEYS: dead (hash), dead_at (sorted set: id -> failed at). ARGV: failed before (unix s),
-- most kept, batch. Removes dead letters that failed before the cutoff, then the oldest
-- beyond the most kept, at most `batch` of each per call. Returns how many went.
-- Letters recorded before `dead_at` existed are indexed first, by their `failed_at`.
local batch = tonumber(ARGV[3])
if redis.call('HLEN', KEYS[1]) > redis.call('ZCARD', KEYS[2]) then
  for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not redis.call('ZSCORE', KEYS[2], id) then
      local ok, record = pcall(cjson.decode, redis.call('HGET', KEYS[1], id))
      redis.call('ZADD', KEYS[2], ok and tonumber(record['failed_at']) or 0, id)
    end
  end
end
local function drop(ids)
  for _, id in ipairs(ids) do
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
  end
  return #ids
end
local removed = drop(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, batch))
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[2])
if over > 0 then
  removed = removed + drop(redis.call('ZRANGE', KEYS[2], 0, math.min(over, batch) - 1))
end
return removed
