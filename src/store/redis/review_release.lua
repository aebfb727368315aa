-- Gives a leased case back. KEYS: case, pii key, pii body, review, face key, face body. ARGV: reviewer, now.
-- Replies: `not_pending` | `expired` | `foreign` | `released`, entry.
-- Runs after `review_lists.lua` (its helpers, e.g. `pending()`).
if not pending() then return {'not_pending'} end
local holder = redis.call('HGET', KEYS[4], 'holder')
local lease_until = tonumber(redis.call('HGET', KEYS[4], 'until'))
if not holder or not lease_until or lease_until <= tonumber(ARGV[2]) then return {'expired'} end
if holder ~= ARGV[1] then return {'foreign'} end
redis.call('HDEL', KEYS[4], 'holder', 'until', 'leased')
return {'released', redis.call('HGET', KEYS[4], 'entry') or ''}
