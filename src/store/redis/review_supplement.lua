-- Replaces the sealed data with supplemented material (compare-and-set on the wrapped key,
-- idempotent by request id; TTLs kept). KEYS: case, pii key, pii body, review.
-- ARGV: request id, expected wrapped key, new wrapped key, new body, complete (`1`/`0`).
-- Replies: `not_pending` | `duplicate` | `conflict` | `applied`.
-- Runs after `review_lists.lua` (its helpers, e.g. `pending()`).
if not pending() then return {'not_pending'} end
local current = redis.call('GET', KEYS[2])
if not current or redis.call('EXISTS', KEYS[3]) == 0 then return {'not_pending'} end
local requests = list(redis.call('HGET', KEYS[4], 'supplements'))
if has(requests, ARGV[1]) then return {'duplicate'} end
if current ~= ARGV[2] then return {'conflict'} end
redis.call('SET', KEYS[2], ARGV[3], 'KEEPTTL')
redis.call('SET', KEYS[3], ARGV[4], 'KEEPTTL')
table.insert(requests, ARGV[1])
redis.call('HSET', KEYS[4], 'supplements', enc(requests))
if ARGV[5] == '1' then redis.call('HSET', KEYS[4], 'supplement', '1') end
return {'applied'}
