-- Lists a case in its account's erasure index (renewing the index's TTL) and reads the account's
-- tombstones in the same step (one slot): an erasure or withdrawal, which leaves its tombstone and
-- lists the account's cases in one step too (`retention_tombstone.lua`), either lists this case or
-- left a tombstone this reads.
-- KEYS: account index, account tombstones. ARGV: case, ttl (s), then the tombstone fields to read.
-- Reply: the time (or nil) under each field asked for.
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('HMGET', KEYS[2], unpack(ARGV, 3))
