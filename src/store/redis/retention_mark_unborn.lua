-- An erasure or withdrawal found a case listed in its account's index that does not exist (yet):
-- its `begin` may be between its steps. Leaves the tombstone on the case's slot, where the claim
-- that creates the case honours it (`cases_claim.lua`).
-- KEYS: case, the case's mark. ARGV: 1 tombstone field, 2 account, 3 ttl (s).
-- Replies: `exists` (created meanwhile: handle it as a case) | `marked` | `unchanged` (marked before).
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then return {'unchanged'} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {'marked'}
