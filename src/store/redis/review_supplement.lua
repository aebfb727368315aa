-- Replaces the sealed identity material with supplemented material (the face keeps its own key) (compare-and-set on the wrapped key,
-- idempotent by request id; TTLs kept). KEYS: case, pii key, pii body, review, face key, face body.
-- ARGV: request id, expected wrapped key, new wrapped key, new body, complete (`1`/`0`), the face's
-- wrapped key and body (empty: keep the face as it is).
-- Approvals and a live lease given on the material it replaces are void (every approval that
-- verifies the case is given on the material it holds), in this same step; a new round of review
-- starts (whoever claimed it may review the new material).
-- Replies: `not_pending` | `duplicate` | `conflict` | `applied`, `requeue` (it waited for these
-- documents out of the queue and must be queued again) or '', the queue entry of a voided lease
-- (to park; empty: none), the case's queue entry (empty: none), the voided `claimed` and `approvals`
-- fields (empty: none; the caller takes the entry out of those reviewers' skip sets).
-- Runs after `review_lists.lua` (its helpers, e.g. `pending()`).
if not pending() then return {'not_pending'} end
local current = redis.call('GET', KEYS[2])
if not current or redis.call('EXISTS', KEYS[3]) == 0 then return {'not_pending'} end
local requests = list(redis.call('HGET', KEYS[4], 'supplements'))
if has(requests, ARGV[1]) then return {'duplicate'} end
if current ~= ARGV[2] then return {'conflict'} end
redis.call('SET', KEYS[2], ARGV[3], 'KEEPTTL')
redis.call('SET', KEYS[3], ARGV[4], 'KEEPTTL')
if ARGV[6] ~= '' then
  -- A record written before faces were kept apart, split now: the face gets the material's lifetime.
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl > 0 then
    redis.call('SET', KEYS[5], ARGV[6], 'PX', ttl)
    redis.call('SET', KEYS[6], ARGV[7], 'PX', ttl)
  end
end
table.insert(requests, ARGV[1])
local entry = redis.call('HGET', KEYS[4], 'entry') or ''
local old_claimed = redis.call('HGET', KEYS[4], 'claimed') or ''
local old_approvals = redis.call('HGET', KEYS[4], 'approvals') or ''
redis.call('HSET', KEYS[4], 'supplements', enc(requests), 'approvals', '[]', 'claimed', '[]')
local voided = ''
if redis.call('HEXISTS', KEYS[4], 'holder') == 1 then
  redis.call('HDEL', KEYS[4], 'holder', 'until', 'leased')
  voided = redis.call('HGET', KEYS[4], 'entry') or ''
end
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[4], 'supplement', '1')
  if redis.call('HEXISTS', KEYS[4], 'waiting') == 1 then
    -- It waited out of the queue for these documents: the caller queues it again.
    redis.call('HDEL', KEYS[4], 'waiting')
    return {'applied', 'requeue', voided, entry, old_claimed, old_approvals}
  end
end
return {'applied', '', voided, entry, old_claimed, old_approvals}
