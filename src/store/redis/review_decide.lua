-- Records a verdict under the caller's live lease, as the step the gateway decided from the state it
-- read: the tag of that one outcome is all it is given (never one of an outcome not decided).
-- KEYS: case, pii key, pii body, review, face key, face body.
-- ARGV: 1 reviewer, 2 the outcome (`requeue`: an approval that is not the last one needed;
-- `verify`: the last approval; `limit`: the last approval, refused by the anchor limit; `reject`),
-- 3 approvals required (>= 1), 4 now, 5 record ttl (s), 6 the case's tag read before
-- (compare-and-set), 7 the tag of the record this step writes (empty for `requeue`), 8 the refusal
-- code of `limit` (`ID_ACCOUNT_LIMIT`, passed in so that the code is written in one place),
-- 9 the anchor index bound by `verify` (empty: none), 10 the approvals field as read (empty: none).
-- Replies: `not_pending` | `expired` | `foreign` | `changed` (the case or its approvals are not
-- what the outcome was decided from) | `requeued`, entry, case | `ended`, entry, case.
-- Runs after `review_lists.lua` (its helpers, e.g. `pending()`).
if not pending() then return {'not_pending'} end
local holder = redis.call('HGET', KEYS[4], 'holder')
local lease_until = tonumber(redis.call('HGET', KEYS[4], 'until'))
if not holder or not lease_until or lease_until <= tonumber(ARGV[4]) then return {'expired'} end
if holder ~= ARGV[1] then return {'foreign'} end
if redis.call('HGET', KEYS[1], 'mac') ~= ARGV[6] then return {'changed'} end
local given = redis.call('HGET', KEYS[4], 'approvals') or ''
if given ~= ARGV[10] then return {'changed'} end
local outcome = ARGV[2]
local entry = redis.call('HGET', KEYS[4], 'entry') or ''
if outcome == 'requeue' or outcome == 'verify' or outcome == 'limit' then
  local approvals = list(given)
  if not has(approvals, ARGV[1]) then table.insert(approvals, ARGV[1]) end
  local last = #approvals >= tonumber(ARGV[3])
  if last ~= (outcome ~= 'requeue') then return {'changed'} end
  if not last then
    -- Back to the queue for another reviewer; the status (and so the tag) stays as it is.
    redis.call('HSET', KEYS[4], 'approvals', enc(approvals))
    redis.call('HDEL', KEYS[4], 'holder', 'until', 'leased')
    redis.call('HSET', KEYS[1], 'updated', ARGV[4])
    return {'requeued', entry, unpack(redis.call('HGETALL', KEYS[1]))}
  end
elseif outcome ~= 'reject' then
  return {'changed'}
end
local final = 'not_verified'
if outcome == 'limit' then
  -- The person is who they claim, but this ID already verified its allowed anchor accounts.
  redis.call('HSET', KEYS[1], 'refusal', ARGV[8])
else
  redis.call('HDEL', KEYS[1], 'refusal')
  if outcome == 'verify' then
    final = 'verified'
    if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'anchor', ARGV[9]) end
  end
end
-- The end of the case: crypto-shredding and out of the queue in one step.
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('HDEL', KEYS[1], 'pii_exp')
redis.call('HSET', KEYS[1], 'status', final, 'updated', ARGV[4], 'status_at', ARGV[4], 'mac', ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {'ended', entry, unpack(redis.call('HGETALL', KEYS[1]))}
