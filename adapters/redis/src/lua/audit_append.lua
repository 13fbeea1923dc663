-- KEYS: the user's event stream, the user's noise counter. ARGV: '1' for a noise event,
-- the most noise per window, the window (ms), the most events kept, the oldest entry id
-- kept (ms: the retention cutoff), the stream's lifetime (ms), then the event's fields
-- and values.
-- Appends the event and trims by count and age, in one step. A noise event past the
-- budget stores nothing: 0; else 1.
if ARGV[1] == '1' then
  if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) then return 0 end
  if redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[4], '*', unpack(ARGV, 7))
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
