-- Helpers shared by the session scripts (prepended to each).

-- The fields of a session hash in the order the adapter reads them, '' for absent ones.
local function session_fields(key)
  local f = redis.call('HMGET', key, 'refresh_jti', 'previous_jti', 'created_at',
    'refreshed_at', 'expires_at', 'user_agent', 'amr')
  for i = 1, 7 do f[i] = f[i] or '' end
  return f
end

-- Sets the key's expiry to `at` unless it already expires later. A key without expiry
-- gets `at` (Redis' GT treats "no expiry" as infinite, which is not what we want).
local function extend(key, at)
  if redis.call('TTL', key) == -1 then
    redis.call('EXPIREAT', key, at)
  else
    redis.call('EXPIREAT', key, at, 'GT')
  end
end

-- Whether `presented` is the refresh token the session's last rotation spent, and may
-- still speak for it: within `grace` seconds of that rotation, or because that
-- rotation's answer was lost (the `unanswered` mark, see mark_unanswered.lua).
local function replays_last(key, presented, now, grace)
  if redis.call('HGET', key, 'previous_jti') ~= presented then return false end
  if redis.call('HGET', key, 'unanswered') == presented then return true end
  local refreshed = tonumber(redis.call('HGET', key, 'refreshed_at'))
  return grace > 0 and refreshed ~= nil and now - refreshed <= grace
end

-- Whether `presented` speaks for the session: its current refresh token, or a replay of
-- the last one as above. Any other token of the session is reuse.
local function accepts(key, presented, now, grace)
  return redis.call('HGET', key, 'refresh_jti') == presented
    or replays_last(key, presented, now, grace)
end

-- Drops the ids of expired sessions from a user's index (scored by expiry).
local function prune(set, now)
  redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
end
