-- Records a candidate binding (`c:<case>:<until>`) of an account under an anchor ID, before the
-- step that would verify the case; an account already bound keeps its binding. The candidate is
-- only a hint: it binds nothing unless its case is `verified` (see `bound_accounts` in `limits.rs`).
-- KEYS: binding hash. ARGV: account, candidate, ttl (s).
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current or string.sub(current, 1, 2) ~= 'v:' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
