-- KEYS: sessions, then the session key of each member read just before.
-- ARGV: now, after created_at ('' for the first page), after sid, limit, then the sid of
-- each of those keys. Returns the id and 7 fields of each live session after the cursor,
-- in (created_at, sid) order, at most limit + 1 of them (one more tells that a next page
-- exists). The set holds at most the per-user cap, so sorting it here is bounded.
prune(KEYS[1], ARGV[1])
local after_created = tonumber(ARGV[2])
local after_sid = ARGV[3]
local rows = {}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local fields = session_fields(KEYS[i])
    local created = tonumber(fields[3]) or 0
    local sid = ARGV[i + 3]
    if after_created == nil or created > after_created
      or (created == after_created and sid > after_sid) then
      table.insert(rows, {created, sid, fields})
    end
  end
end
table.sort(rows, function(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] end
  return a[2] < b[2]
end)
local out = {}
for i = 1, math.min(#rows, tonumber(ARGV[4]) + 1) do
  table.insert(out, rows[i][2])
  for _, field in ipairs(rows[i][3]) do table.insert(out, field) end
end
return out
