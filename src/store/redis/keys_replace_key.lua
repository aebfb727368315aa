-- Replaces a wrapped data key if unchanged and the body still exists, keeping its TTL.
-- KEYS: the part's wrapped key, its body
-- (identity or face). ARGV: old, new.
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
