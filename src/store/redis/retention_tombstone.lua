-- Leaves a tombstone on an account (an erasure or a withdrawal of biometric consent, at a time) and
-- lists the account's cases in the same step (one slot): a `begin` that lists its case after this
-- reads the tombstone (`cases_index.lua`); one that listed it before is in the reply.
-- KEYS: account index, account tombstones. ARGV: field, now (a later time already there stays), ttl (s).
-- Reply: the listed case ids.
local before = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if not before or before < tonumber(ARGV[2]) then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
redis.call('EXPIRE', KEYS[2], ARGV[3])
return redis.call('SMEMBERS', KEYS[1])
