-- Leases the case to a reviewer if it is ready for them. KEYS: case, pii key, pii body, review, face key, face body.
-- ARGV: reviewer, now, lease until, four-eyes (`1`/`0`), anchors need a supplement (`1`/`0`),
-- the anchor purpose, the queue entry handed to the claimer, the document-review reason code (such a
-- case always waits for its documents: without a face they are all a reviewer decides from).
-- Replies: `gone` | `held`, holder, lease start | `waiting`, `anchor` | `docs` (why), pii due time
-- (the case waits for its documents: no longer queued, see `review.rs`) | `not_ready` (not for this
-- reviewer) | `granted`, pii key, pii body, face key, face body (both empty when the case holds no
-- face), case.
-- Runs after `review_lists.lua` (its helpers, e.g. `pending()`).
if not pending() then return {'gone'} end
local entry = redis.call('HGET', KEYS[4], 'entry')
-- A second entry of the same case (orphan repair raced a slow finish) is dropped.
if entry and entry ~= ARGV[7] then return {'gone'} end
local key = redis.call('GET', KEYS[2])
local body = redis.call('GET', KEYS[3])
-- Data gone by its TTL: the sweep will expire the case; nothing to review.
if not key or not body then return {'gone'} end
if not entry then redis.call('HSET', KEYS[4], 'entry', ARGV[7]) end
local now = tonumber(ARGV[2])
local holder = redis.call('HGET', KEYS[4], 'holder')
local lease_until = tonumber(redis.call('HGET', KEYS[4], 'until'))
-- `store::lease_holds`: a lease with more than twice its length left was taken on a clock that has
-- gone back since; it is void, not held until that clock catches up.
if holder and lease_until and lease_until > now and lease_until - now <= 2 * (tonumber(ARGV[3]) - now) then
  return {'held', holder, redis.call('HGET', KEYS[4], 'leased') or ARGV[2]}
end
local document_review = redis.call('HGET', KEYS[1], 'why') == ARGV[8]
local needs_documents = document_review
  or (ARGV[5] == '1' and redis.call('HGET', KEYS[1], 'purpose') == ARGV[6])
if needs_documents and redis.call('HGET', KEYS[4], 'supplement') ~= '1' then
  -- Nobody may take it before its documents are in: out of the queue (the claimer drops the entry)
  -- until the supplement that completes it puts it back.
  local kind = 'anchor'
  if document_review then kind = 'docs' end
  redis.call('HDEL', KEYS[4], 'entry')
  redis.call('HSET', KEYS[4], 'waiting', kind)
  return {'waiting', kind, redis.call('HGET', KEYS[1], 'pii_exp') or '0'}
end
local claimed = list(redis.call('HGET', KEYS[4], 'claimed'))
if has(list(redis.call('HGET', KEYS[4], 'approvals')), ARGV[1]) then return {'not_ready'} end
if ARGV[4] == '1' and has(claimed, ARGV[1]) then return {'not_ready'} end
if not has(claimed, ARGV[1]) then table.insert(claimed, ARGV[1]) end
redis.call('HSET', KEYS[4], 'holder', ARGV[1], 'until', ARGV[3], 'leased', ARGV[2], 'claimed', enc(claimed))
local face_key = redis.call('GET', KEYS[5])
local face_body = redis.call('GET', KEYS[6])
if not face_key or not face_body then
  face_key = ''
  face_body = ''
end
return {'granted', key, body, face_key, face_body, unpack(redis.call('HGETALL', KEYS[1]))}
