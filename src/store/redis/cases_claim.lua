-- Claims a case for `begin`: creates it if absent, takes over a `Processing` case whose lease ran
-- out (or is void, see below) if it holds the same request (same content fingerprint), or reports it as it stands.
-- A case created here honours the tombstones an erasure or withdrawal left on it while it was listed
-- but not created yet (`retention_mark_unborn.lua`): `erase` (it ends erased) and, for a purpose
-- that compares a face, `nobio` (it keeps no face); the mark goes with its creation.
-- KEYS: case, the case's mark. ARGV: 1 now, 2 new lease, 3 record ttl (s), 4 fingerprint, 5 account,
-- 6 `1` for a purpose that compares a face, 7-10 the tombstone fields that concern the case (erase
-- for any principal, erase for its own, nobio for any, nobio for its own), then from 11 field/value
-- pairs of a new case.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 11))
  local marks = redis.call('HMGET', KEYS[2], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
  if marks[1] == ARGV[5] or marks[2] == ARGV[5] then redis.call('HSET', KEYS[1], 'erase', '1') end
  if ARGV[6] == '1' and (marks[3] == ARGV[5] or marks[4] == ARGV[5]) then
    redis.call('HSET', KEYS[1], 'nobio', '1')
  end
  redis.call('DEL', KEYS[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {'started', unpack(redis.call('HGETALL', KEYS[1]))}
end
local status = redis.call('HGET', KEYS[1], 'status')
local lease = tonumber(redis.call('HGET', KEYS[1], 'lease'))
local now = tonumber(ARGV[1])
-- `store::lease_holds`: a lease ends at its end, or at once if more than twice its length is left
-- (taken on a clock that has gone back since).
local held = lease ~= nil and lease > now and lease - now <= 2 * (tonumber(ARGV[2]) - now)
if status == 'processing' and lease ~= nil and not held
   and redis.call('HGET', KEYS[1], 'fp') == ARGV[4] then
  redis.call('HSET', KEYS[1], 'lease', ARGV[2], 'updated', ARGV[1])
  return {'started', unpack(redis.call('HGETALL', KEYS[1]))}
end
return {'existing', unpack(redis.call('HGETALL', KEYS[1]))}
