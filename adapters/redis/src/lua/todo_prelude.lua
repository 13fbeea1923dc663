-- Helpers shared by the todo scripts (prepended to each).

-- The listing order (a sorted set of todo ids by insertion number) next to the todos
-- hash. Todos stored before the order existed are indexed once, the first time.
local function ensure_order(todos, order)
  if redis.call('EXISTS', order) == 1 or redis.call('HLEN', todos) == 0 then return end
  local all = redis.call('HGETALL', todos)
  for i = 1, #all, 2 do
    local seq = string.match(all[i + 1], '^(%d+)|')
    if seq then redis.call('ZADD', order, seq, all[i]) end
  end
end
