-- Forgets a final case last changed before a time. KEYS: case, pii key, pii body, review, face key, face body.
-- ARGV: before.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'verified' and status ~= 'not_verified' and status ~= 'expired' and status ~= 'erased' then
  return {'keep'}
end
local updated = redis.call('HGET', KEYS[1], 'updated')
if tonumber(updated) ~= nil and tonumber(updated) >= tonumber(ARGV[1]) then return {'later', updated} end
local account = redis.call('HGET', KEYS[1], 'account') or ''
local request = redis.call('HGET', KEYS[1], 'request') or ''
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return {'forgot', account, request}
