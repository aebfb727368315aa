-- List helpers shared by the case scripts. Lists (claimed by, approvals, supplement requests) are
-- JSON arrays of strings in one hash field; `cjson` would write an empty table as `{}`, hence `enc`.
local function list(v)
  if not v or v == '' then return {} end
  return cjson.decode(v)
end
local function enc(t)
  if #t == 0 then return '[]' end
  return cjson.encode(t)
end
local function has(t, x)
  for _, v in ipairs(t) do if v == x then return true end end
  return false
end
local function pending()
  return redis.call('HGET', KEYS[1], 'status') == 'pending_review' and redis.call('EXISTS', KEYS[4]) == 1
end
