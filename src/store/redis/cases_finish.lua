-- Ends the provider phase; a case pending review gets its review hash (queued now, same TTL as
-- its personal data). A case whose erasure was requested meanwhile ends `erased` with nothing kept.
-- KEYS: case, pii key, pii body, review, face key, face body.
-- ARGV: 1 status, 2 now, 3 record ttl (s), 4 is final, 5 provider?, 6 refusal?, 7 pii_exp?,
-- 8 pii ttl (ms)?, 9 wrapped key, 10 body, 11 the tag read before (compare-and-set), 12 the tag of
-- the record this step writes: of `status` (ARGV 1), or, if ARGV 13 is `1`, of the erased record,
-- 13 whether the gateway read the erasure mark (`1`/`0`; the step refuses, `changed`, when the
-- mark it finds differs: the gateway then sends the other tag; never both), 14 anchor index?,
-- 15 review reason?, 16 the face's wrapped key?, 17 the face's body?, 18 the document-review reason code, 19 the documents (ID card front,
-- back, handheld photo) are all in the sealed material (`1`/`0`) — `?` = empty string for none.
-- A case whose biometric consent was withdrawn while processing (`nobio`) keeps no face and, if
-- pending, is a document-review case. Replies: `not_found` | `conflict` | `changed` | `erased`, case |
-- `ok`, case | `waiting`, case (pending, a document-review case without its documents: it waits for
-- them out of the queue, see `review.rs`).
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
if redis.call('HGET', KEYS[1], 'status') ~= 'processing' then return {'conflict'} end
if redis.call('HGET', KEYS[1], 'mac') ~= ARGV[11] then return {'conflict'} end
local erasing = redis.call('HGET', KEYS[1], 'erase') == '1'
if erasing ~= (ARGV[13] == '1') then return {'changed'} end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('HDEL', KEYS[1], 'pii_exp', 'refusal', 'anchor')
if erasing then
  redis.call('HSET', KEYS[1], 'status', 'erased', 'updated', ARGV[2], 'status_at', ARGV[2], 'mac', ARGV[12])
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'provider', ARGV[5]) end
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {'erased', unpack(redis.call('HGETALL', KEYS[1]))}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated', ARGV[2], 'status_at', ARGV[2], 'mac', ARGV[12])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'provider', ARGV[5]) else redis.call('HDEL', KEYS[1], 'provider') end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'refusal', ARGV[6]) end
if ARGV[14] ~= '' then redis.call('HSET', KEYS[1], 'anchor', ARGV[14]) end
if ARGV[15] ~= '' then redis.call('HSET', KEYS[1], 'why', ARGV[15]) end
local no_face = redis.call('HGET', KEYS[1], 'nobio') == '1'
if no_face and ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'why', ARGV[18]) end
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'pii_exp', ARGV[7])
  if ARGV[8] ~= '' then
    redis.call('SET', KEYS[2], ARGV[9], 'PX', ARGV[8])
    redis.call('SET', KEYS[3], ARGV[10], 'PX', ARGV[8])
    if ARGV[16] ~= '' and not no_face then
      redis.call('SET', KEYS[5], ARGV[16], 'PX', ARGV[8])
      redis.call('SET', KEYS[6], ARGV[17], 'PX', ARGV[8])
    end
    redis.call('HSET', KEYS[4], 'queued', ARGV[2])
    if ARGV[19] == '1' then redis.call('HSET', KEYS[4], 'supplement', '1') end
    redis.call('PEXPIRE', KEYS[4], ARGV[8])
    if redis.call('HGET', KEYS[1], 'why') == ARGV[18] and ARGV[19] ~= '1' then
      -- A document-review case without its documents waits for them out of the queue.
      redis.call('HSET', KEYS[4], 'waiting', 'docs')
      return {'waiting', unpack(redis.call('HGETALL', KEYS[1]))}
    end
  end
end
if ARGV[4] == '1' then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return {'ok', unpack(redis.call('HGETALL', KEYS[1]))}
