-- Moves a pending entry to another consumer with a delivery time, only if `expected` still owns
-- it. KEYS: queue stream. ARGV: group, entry, expected owner, new owner, delivery time (ms).
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if type(p) ~= 'table' or p.err or #p == 0 or p[1][2] ~= ARGV[3] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[4], 0, ARGV[2], 'TIME', ARGV[5], 'JUSTID')
return 1
