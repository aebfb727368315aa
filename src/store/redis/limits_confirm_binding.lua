-- Confirms a binding whose case is verified (`v:<case>`), if the entry still names that case.
-- KEYS: binding hash. ARGV: account, case, ttl (s; `0`: keep the hash's TTL, as a reader does).
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and (current == 'v:' .. ARGV[2] or string.sub(current, 1, string.len(ARGV[2]) + 3) == 'c:' .. ARGV[2] .. ':') then
  redis.call('HSET', KEYS[1], ARGV[1], 'v:' .. ARGV[2])
  if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
  return 1
end
return 0
