-- Helpers shared by the scripts that check a texted code (prepended to each).

-- Checks the presented digest (hex) against the code hash `key` at `now` (unix s), as
-- `CodeRecord::try_digest` does in the embedded store. Returns 'dead' (none, expired, or
-- too many wrong tries), 'spent' and whether the digest is the one that spent it,
-- 'wrong' and the tries left (the try is counted), or 'right' (not spent here: the
-- caller spends it with what it does).
local function try_digest(key, presented, now)
  local digest, expires_at, attempts, max_attempts, spent = unpack(redis.call('HMGET', key,
    'digest', 'expires_at', 'attempts', 'max_attempts', 'spent'))
  if not digest or tonumber(now) >= tonumber(expires_at) then return 'dead' end
  -- Compared without an early exit, so timing tells nothing about how much of a digest
  -- matched.
  local diff = #digest == #presented and 0 or 1
  for i = 1, math.min(#digest, #presented) do
    diff = bit.bor(diff, bit.bxor(string.byte(digest, i), string.byte(presented, i)))
  end
  if spent == '1' then return 'spent', diff == 0 end
  attempts, max_attempts = tonumber(attempts), tonumber(max_attempts)
  if attempts >= max_attempts then return 'dead' end
  if diff ~= 0 then
    attempts = attempts + 1
    redis.call('HSET', key, 'attempts', attempts)
    return 'wrong', max_attempts - attempts
  end
  return 'right'
end
