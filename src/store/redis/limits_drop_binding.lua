-- Removes an account's entry if it still names the given case (any state) or, with an empty case,
-- whatever it names. KEYS: binding hash. ARGV: account, case.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
if ARGV[2] == '' or current == 'v:' .. ARGV[2] or string.sub(current, 1, string.len(ARGV[2]) + 3) == 'c:' .. ARGV[2] .. ':' then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
