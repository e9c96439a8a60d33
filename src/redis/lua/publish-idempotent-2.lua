-- Atomic idempotent publish: check the marker, XADD, store the new entry id in the marker.
-- Both keys must share a hash slot (the marker key carries the stream's hash tag).
-- KEYS[1]  the marker key
-- KEYS[2]  the stream key
-- ARGV[1]  the marker's time to live in milliseconds
-- ARGV[2]  MAXLEN ~ threshold (the service's 10000)
-- ARGV[3]  the entry's `data` field: the event as JSON
-- Returns  { entry id, 0 } when added; { first entry id, 1 } when the marker was already set;
--          -1 when the stream key holds another type; -2 when the marker key holds another type
local markerType = redis.call('TYPE', KEYS[1])['ok']
if markerType == 'string' then
  return { redis.call('GET', KEYS[1]), 1 }
end
if markerType ~= 'none' then
  return -2
end
local streamType = redis.call('TYPE', KEYS[2])['ok']
if streamType ~= 'stream' and streamType ~= 'none' then
  return -1
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[3])
redis.call('SET', KEYS[1], id, 'PX', ARGV[1])
return { id, 0 }
