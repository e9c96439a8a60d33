-- Redis 8.6+: native idempotent XADD (IDMP), run in a script only to tell a new entry from a
-- duplicate: the server returns the first entry's id for a repeated (producer, iid).
-- KEYS[1]  the stream key
-- ARGV[1]  producer id
-- ARGV[2]  idempotent id (iid)
-- ARGV[3]  MAXLEN ~ threshold
-- ARGV[4]  the entry's `data` field: the event as JSON
-- Returns  { entry id, 0 } when added; { first entry id, 1 } for a duplicate;
--          -1 when the stream key holds another type
local streamType = redis.call('TYPE', KEYS[1])['ok']
if streamType ~= 'stream' and streamType ~= 'none' then
  return -1
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local id = redis.call('XADD', KEYS[1], 'IDMP', ARGV[1], ARGV[2], 'MAXLEN', '~', ARGV[3], '*', 'data', ARGV[4])
if last == nil then
  return { id, 0 }
end
local function parts(s)
  local ms, seq = string.match(s, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local lms, lseq = parts(last[1])
local ims, iseq = parts(id)
-- an id above the last existing entry was just added; the original of a duplicate is at or below it
if ims > lms or (ims == lms and iseq > lseq) then
  return { id, 0 }
end
return { id, 1 }
