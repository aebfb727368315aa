-- Ends a pending case by expiry or erasure and destroys its personal data (crypto-shredding: the
-- wrapped data key and the body go in the same step) and takes it out of the review queue (the
-- review hash goes here; its stream entry is dropped by the next claim that meets it). Erasure of a
-- case still processing marks it (`erase`), so that it ends `erased` instead of storing anything.
-- KEYS: case, pii key, pii body, review, face key, face body. ARGV: 1 `expire` | `erase`, 2 now, 3 record ttl (s),
-- 4 account (erase: the case must be its), 5 the tag read before, 6 the new tag, 7 principal
-- (erase: only its cases; empty = any).
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if ARGV[1] == 'erase' then
  if redis.call('HGET', KEYS[1], 'account') ~= ARGV[4] then return {'other_account'} end
  if ARGV[7] ~= '' and redis.call('HGET', KEYS[1], 'principal') ~= ARGV[7] then return {'other_principal'} end
end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'processing' then
  if ARGV[1] == 'erase' then
    if redis.call('HGET', KEYS[1], 'erase') == '1' then return {'final'} end
    redis.call('HSET', KEYS[1], 'erase', '1')
    return {'marked'}
  end
  return {'keep'}
end
if status ~= 'pending_review' then return {'final'} end
if redis.call('HGET', KEYS[1], 'mac') ~= ARGV[5] then return {'changed'} end
local next_status = 'erased'
if ARGV[1] == 'expire' then
  local due = redis.call('HGET', KEYS[1], 'pii_exp')
  if not due then return {'final'} end
  if tonumber(due) == nil or tonumber(due) > tonumber(ARGV[2]) then return {'later', due} end
  next_status = 'expired'
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('HDEL', KEYS[1], 'pii_exp')
redis.call('HSET', KEYS[1], 'status', next_status, 'updated', ARGV[2], 'status_at', ARGV[2], 'mac', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {'done', unpack(redis.call('HGETALL', KEYS[1]))}
