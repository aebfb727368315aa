-- Claims a case for `begin`: creates it if absent, takes over a `Processing` case whose lease ran
-- out (or is void, see below) if it holds the same request (same content fingerprint), or reports it as it stands.
-- KEYS: case. ARGV: now, new lease, record ttl (s), fingerprint, then field/value pairs of a new case.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 5))
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
