local function key_check(k, per_second, project, mode)
  local rec = redis.call('HMGET', k, 'project', 'mode', 'revoked', 'last_used', 'id', 'tat')
  if not rec[1] then return {'unknown'} end
  if project and (rec[1] ~= project or rec[2] ~= mode) then return {'unknown'} end
  if rec[3] == '1' then return {'revoked'} end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local interval = math.floor(1000000 / tonumber(per_second))
  local burst = 1000000
  local tat = tonumber(rec[6] or '0') or 0
  if tat < now then tat = now end
  local new_tat = tat + interval
  if new_tat - now > burst then
    return {'limited', tostring(math.ceil((new_tat - now - burst) / 1000))}
  end
  local charged
  if tonumber(rec[4] or '0') < tonumber(t[1]) - 60 then
    charged = redis.pcall('HSET', k, 'tat', string.format('%d', new_tat), 'last_used', t[1])
  else
    charged = redis.pcall('HSET', k, 'tat', string.format('%d', new_tat))
  end
  if type(charged) == 'table' and charged.err then
    local code = string.match(charged.err, '^%u+')
    if code and WRITES_REFUSED[code] then return nil, rec, code end
    return charged
  end
  return nil, rec
end
