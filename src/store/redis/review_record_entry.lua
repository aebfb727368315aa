-- Records a case's queue entry unless it has one. KEYS: case, pii key, pii body, review, face key, face body.
-- ARGV: entry. Replies: `gone` | `has`, entry | `ok`.
-- Runs after `review_lists.lua` (its helpers, e.g. `pending()`).
if not pending() then return {'gone'} end
local entry = redis.call('HGET', KEYS[4], 'entry')
if entry then return {'has', entry} end
redis.call('HSET', KEYS[4], 'entry', ARGV[1])
-- Queued again (its documents came, or a claimer without supplement gating took it back).
redis.call('HDEL', KEYS[4], 'waiting')
return {'ok'}
