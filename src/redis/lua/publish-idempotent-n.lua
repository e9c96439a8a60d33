-- Atomic idempotent publish of one or more events to one stream: for each, check its marker,
-- XADD, store the new entry id in the marker with a TTL. All keys share the stream's hash slot
-- (each marker key carries the stream's hash tag). Variable key count: the caller passes numkeys.
-- KEYS[1]     the stream key
-- KEYS[2..]   one marker key per event
-- ARGV[1]     the markers' time to live in milliseconds
-- ARGV[2]     MAXLEN ~ threshold (the service's 10000)
-- ARGV[3..]   one `data` field per event: the event as JSON, in the order of the markers
-- Returns     a flat list, two items per event: entry id, then 0 (added) or 1 (the marker was
--             set: the first entry id, nothing added) or -2 (the marker key holds another type);
--             or -1 alone when the stream key holds another type (nothing written)
local streamType = redis.call('TYPE', KEYS[1])['ok']
if streamType ~= 'stream' and streamType ~= 'none' then
  return -1
end
local out = {}
for i = 2, #KEYS do
  local seen = redis.pcall('GET', KEYS[i])
  if type(seen) == 'table' and seen['err'] then
    out[#out + 1] = ''
    out[#out + 1] = -2
  elseif seen then
    out[#out + 1] = seen
    out[#out + 1] = 1
  else
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[i + 1])
    redis.call('SET', KEYS[i], id, 'PX', ARGV[1])
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end
return out
