-- Whether a pending case has no queue entry though queued before a time.
-- KEYS: case, pii key, pii body, review, face key, face body. ARGV: queued before. Replies: `no` | `orphan`.
-- Runs after `review_lists.lua` (its helpers, e.g. `pending()`).
if not pending() or redis.call('HEXISTS', KEYS[4], 'entry') == 1 then return {'no'} end
-- Waiting for its documents out of the queue (see `review_grant.lua`): not lost.
if redis.call('HEXISTS', KEYS[4], 'waiting') == 1 then return {'no'} end
local queued = tonumber(redis.call('HGET', KEYS[4], 'queued'))
if queued == nil or queued > tonumber(ARGV[1]) then return {'no'} end
return {'orphan'}
