-- Withdrawal of biometric consent for one case: a pending case of the account loses its face
-- (wrapped key and body). A case of a purpose that compares a face (the anchor) goes on as a
-- document-review case; approvals and a live lease given while the face was there are dropped, all
-- in this one step. A case of another purpose never needed a face: it keeps its review path (and
-- loses a face it should not hold). The review reason is not part of the record's tag, so the tag
-- stays.
-- KEYS: case, pii key, pii body, review, face key, face body. ARGV: 1 account, 2 principal (empty =
-- any), 3 now, 4 the document-review reason code, 5 the purpose that compares a face.
-- Replies: `missing` | `other_account` | `other_principal` | `not_pending` | `unchanged` | `marked`
-- (a processing case: it will keep no face) | `withdrawn`, queue entry (empty: none), the voided
-- `approvals` field (empty: none; the caller takes the entry out of those reviewers' skip sets),
-- case.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if redis.call('HGET', KEYS[1], 'account') ~= ARGV[1] then return {'other_account'} end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'principal') ~= ARGV[2] then return {'other_principal'} end
local status = redis.call('HGET', KEYS[1], 'status')
local compares_face = redis.call('HGET', KEYS[1], 'purpose') == ARGV[5]
if status == 'processing' and redis.call('HGET', KEYS[1], 'erase') ~= '1' then
  -- Its face may be with a provider (not recalled); `finish` keeps no face for it (`nobio`).
  if not compares_face or redis.call('HGET', KEYS[1], 'nobio') == '1' then return {'unchanged'} end
  redis.call('HSET', KEYS[1], 'nobio', '1')
  return {'marked'}
end
if status ~= 'pending_review' then return {'not_pending'} end
local had_face = redis.call('DEL', KEYS[5], KEYS[6]) > 0
if not compares_face then
  if not had_face then return {'unchanged'} end
  redis.call('HSET', KEYS[1], 'updated', ARGV[3])
  return {'withdrawn', '', '', unpack(redis.call('HGETALL', KEYS[1]))}
end
if not had_face and redis.call('HGET', KEYS[1], 'why') == ARGV[4] then return {'unchanged'} end
redis.call('HSET', KEYS[1], 'why', ARGV[4], 'updated', ARGV[3])
local entry = ''
local approvals = ''
if redis.call('EXISTS', KEYS[4]) == 1 then
  approvals = redis.call('HGET', KEYS[4], 'approvals') or ''
  redis.call('HDEL', KEYS[4], 'holder', 'until', 'leased')
  redis.call('HSET', KEYS[4], 'approvals', '[]')
  entry = redis.call('HGET', KEYS[4], 'entry') or ''
end
return {'withdrawn', entry, approvals, unpack(redis.call('HGETALL', KEYS[1]))}
