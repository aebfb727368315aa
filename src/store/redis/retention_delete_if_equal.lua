-- Deletes a key if it still holds a value (compare-and-delete). KEYS: key. ARGV: value.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
