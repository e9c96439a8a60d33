-- Redis 8.6+: native idempotent XADD (IDMP) of one or more events to one stream, in a script only
-- to tell a new entry from a repeat (the server returns the first entry's id for a repeated
-- (producer, iid)): an id above the stream's last entry before the XADD is new.
-- KEYS[1]   the stream key
-- ARGV[1]   producer id
-- ARGV[2]   MAXLEN ~ threshold
-- ARGV[3..] pairs: idempotent id (iid), then the event as JSON
-- Returns   a flat list, two items per event: entry id, then 0 (added) or 1 (a repeat);
--           or -1 alone when the stream key holds another type (nothing written)
local streamType = redis.call('TYPE', KEYS[1])['ok']
if streamType ~= 'stream' and streamType ~= 'none' then
  return -1
end
local function parts(s)
  local ms, seq = string.match(s, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local out = {}
for i = 3, #ARGV, 2 do
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
  local id = redis.call('XADD', KEYS[1], 'IDMP', ARGV[1], ARGV[i], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[i + 1])
  local added = 1
  if last == nil then
    added = 0
  else
    local lms, lseq = parts(last[1])
    local ims, iseq = parts(id)
    if ims > lms or (ims == lms and iseq > lseq) then
      added = 0
    end
  end
  out[#out + 1] = id
  out[#out + 1] = added
end
return out
