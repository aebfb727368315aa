-- Counts one event in a window. KEYS: counter. ARGV: ttl (s).
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
