-- Appending to an account's audit trail (prepended to the scripts that do).

-- Appends an event to `stream`, its arguments from ARGV[first]: '1' for a noise event, the
-- most noise per window, the window (ms), the most events kept, the oldest entry id kept
-- (ms: the retention cutoff), the stream's lifetime (ms), then the event's fields and
-- values to the end of ARGV. `noise` is the noise counter (read for a noise event only).
-- Trims by count and age in the same step. A noise event past the budget stores nothing:
-- 0; else 1.
local function append_event(stream, noise, first)
  if ARGV[first] == '1' then
    if tonumber(redis.call('GET', noise) or '0') >= tonumber(ARGV[first + 1]) then return 0 end
    if redis.call('INCR', noise) == 1 then redis.call('PEXPIRE', noise, ARGV[first + 2]) end
  end
  redis.call('XADD', stream, 'MAXLEN', ARGV[first + 3], '*', unpack(ARGV, first + 6))
  redis.call('XTRIM', stream, 'MINID', ARGV[first + 4])
  redis.call('PEXPIRE', stream, ARGV[first + 5])
  return 1
end
