-- Records a verdict under the caller's live lease. KEYS: case, pii key, pii body, review, face key, face body.
-- ARGV: 1 reviewer, 2 `approve` | `reject`, 3 approvals required (>= 1), 4 now, 5 record ttl (s),
-- 6 the case's tag read before (compare-and-set), 7 the tag if verified, 8 the tag if rejected,
-- 9 the tag if refused by the anchor limit, 10 the refusal code if refused by the anchor limit
-- (`ID_ACCOUNT_LIMIT`, passed in so that the code is written in one place; empty: not refused),
-- 11 the anchor index bound by a verifying approval (empty: none).
-- Replies: `not_pending` | `expired` | `foreign` | `changed` | `requeued`, entry, case | `ended`,
-- entry, case.
-- Runs after `review_lists.lua` (its helpers, e.g. `pending()`).
if not pending() then return {'not_pending'} end
local holder = redis.call('HGET', KEYS[4], 'holder')
local lease_until = tonumber(redis.call('HGET', KEYS[4], 'until'))
if not holder or not lease_until or lease_until <= tonumber(ARGV[4]) then return {'expired'} end
if holder ~= ARGV[1] then return {'foreign'} end
if redis.call('HGET', KEYS[1], 'mac') ~= ARGV[6] then return {'changed'} end
local entry = redis.call('HGET', KEYS[4], 'entry') or ''
local final = 'not_verified'
local mac = ARGV[8]
if ARGV[2] == 'approve' then
  local approvals = list(redis.call('HGET', KEYS[4], 'approvals'))
  if not has(approvals, ARGV[1]) then table.insert(approvals, ARGV[1]) end
  if #approvals < tonumber(ARGV[3]) then
    -- Back to the queue for another reviewer.
    redis.call('HSET', KEYS[4], 'approvals', enc(approvals))
    redis.call('HDEL', KEYS[4], 'holder', 'until', 'leased')
    redis.call('HSET', KEYS[1], 'updated', ARGV[4])
    return {'requeued', entry, unpack(redis.call('HGETALL', KEYS[1]))}
  end
  if ARGV[10] ~= '' then
    -- The person is who they claim, but this ID already verified its allowed anchor accounts.
    redis.call('HSET', KEYS[1], 'refusal', ARGV[10])
    mac = ARGV[9]
  else
    final = 'verified'
    mac = ARGV[7]
    if ARGV[11] ~= '' then redis.call('HSET', KEYS[1], 'anchor', ARGV[11]) end
  end
end
-- The end of the case: crypto-shredding and out of the queue in one step.
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('HDEL', KEYS[1], 'pii_exp')
redis.call('HSET', KEYS[1], 'status', final, 'updated', ARGV[4], 'status_at', ARGV[4], 'mac', mac)
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {'ended', entry, unpack(redis.call('HGETALL', KEYS[1]))}
