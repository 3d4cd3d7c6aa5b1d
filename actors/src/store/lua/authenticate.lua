local refused, rec, uncharged = key_check(KEYS[1], ARGV[1])
if refused then return refused end
local out = {uncharged and ('uncharged:' .. uncharged) or 'ok', rec[1], rec[2], rec[5]}
local scope = 'cp:{' .. rec[1] .. '}:' .. rec[2] .. ':'
local last = 2 + tonumber(ARGV[2])
for i = 3, last do
  local f = redis.call('HMGET', scope .. 'obj:' .. ARGV[i], 'v', 'json', 'internal', 'xref')
  out[#out + 1] = f[1]
  out[#out + 1] = f[2]
  out[#out + 1] = f[3]
  out[#out + 1] = f[4]
end
if ARGV[last + 1] then
  local k = scope .. 'idem:' .. ARGV[last + 1]
  local owner, fp, path = ARGV[last + 2], ARGV[last + 3], ARGV[last + 4]
  local cur = redis.call('HMGET', k, 'state', 'fp', 'path', 'status', 'body', 'req')
  if not cur[1] then
    redis.call('HSET', k, 'state', 'running', 'owner', owner, 'fp', fp, 'path', path, 'req', owner)
    redis.call('PEXPIRE', k, ARGV[last + 5])
    out[#out + 1] = 'new'
  elseif cur[3] ~= path then
    out[#out + 1] = 'other_endpoint'
    out[#out + 1] = cur[3]
  elseif cur[2] ~= fp then out[#out + 1] = 'mismatch'
  elseif cur[1] == 'running' then out[#out + 1] = 'running'
  else
    out[#out + 1] = 'done'
    out[#out + 1] = cur[4]
    out[#out + 1] = cur[5]
    out[#out + 1] = cur[6]
  end
end
return out
