-- KEYS: TOTP factor, recovery codes, login challenges. ARGV: sealed secret, proof kind
-- ('step' or 'code'), the step or the recovery code's digest, what it is spent on
-- ('challenge', 'disable' or 'renew'), the challenge's digest ('' otherwise), now (unix s),
-- the secret sealed anew under the current key ('' when it is current), then (to renew)
-- the digest of each new recovery code.
-- In one step: the factor must still be this enabled secret ({'changed'}), the challenge
-- alive ({'no_challenge'}), the step after the last one accepted or the recovery code
-- unused ({'reused'}); then the proof is spent with the challenge, or the factor is
-- deleted with its codes, or its codes are replaced: {'accepted', recovery codes left}.
if redis.call('HGET', KEYS[1], 'enabled') ~= '1'
  or redis.call('HGET', KEYS[1], 'sealed') ~= ARGV[1] then
  return {'changed'}
end
local challenge = ARGV[4] == 'challenge'
if challenge then
  local entry = redis.call('HGET', KEYS[3], ARGV[5])
  local at = entry and tonumber(string.match(entry, '^(%d+)'))
  if not at or at <= tonumber(ARGV[6]) then return {'no_challenge'} end
end
if ARGV[2] == 'step' then
  local last = tonumber(redis.call('HGET', KEYS[1], 'last_step') or '-1')
  if tonumber(ARGV[3]) <= last then return {'reused'} end
  redis.call('HSET', KEYS[1], 'last_step', ARGV[3])
elseif redis.call('SREM', KEYS[2], ARGV[3]) == 0 then
  return {'reused'}
end
if ARGV[4] == 'disable' then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'accepted', 0}
end
if ARGV[4] == 'renew' then
  redis.call('DEL', KEYS[2])
  for i = 8, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
  return {'accepted', redis.call('SCARD', KEYS[2])}
end
redis.call('HDEL', KEYS[3], ARGV[5])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'sealed', ARGV[7]) end
return {'accepted', redis.call('SCARD', KEYS[2])}
