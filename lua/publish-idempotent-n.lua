-- Atomic idempotent publish of one or more events to one stream: for each, check its marker,
-- XADD, store the new entry id in the marker with a TTL. All keys share the stream's hash slot
-- (each marker key carries the stream's hash tag). Variable key count: the caller passes numkeys.
-- A marker blocks a repeat only while it means something: its entry is still in the stream, or
-- the consumer group has had it delivered (entry id <= the group's last-delivered-id, read with
-- XINFO GROUPS). A marker whose entry went (trimmed or deleted) before the group read it does not
-- block: the event is added again and the marker moved to the new entry.
-- Pacing: with a backlog limit, an event is added only while the group's unread entries (those
-- after its last-delivered-id; every entry when the group does not exist) stay under the limit,
-- so MAXLEN ~ never trims an entry nobody has read; the others come back C.NO_ROOM, unwritten.
-- Prelude: publish
-- KEYS[1]     the stream key
-- KEYS[2..]   one marker key per event
-- ARGV[1]     the markers' time to live in milliseconds
-- ARGV[2]     MAXLEN ~ threshold (the service's 10000)
-- ARGV[3]     the consumer group whose reads count as delivery ('' for none)
-- ARGV[4]     the backlog limit: most unread entries the stream may hold after an add (0: no pacing)
-- ARGV[5..]   one `data` field per event: the event as JSON, in the order of the markers
-- Returns     a flat list: the group's unread entries after the call (counted up to the limit; -1
--             when not counted: no limit), 1 or 0 (the group exists or not), its last-delivered-id
--             (''), then two items per event: entry id ('' when none), then C.ADDED,
--             C.ADDED_OVER_STALE_MARKER, C.REPEAT_PRESENT, C.REPEAT_DELIVERED (the entry id is
--             the first one), C.NO_ROOM, C.MARKER_WRONG_TYPE or C.MARKER_NOT_AN_ID;
--             or C.NOT_A_STREAM alone when the stream key holds another type (nothing written).
--             C is the code table src/redis/scripts.ts prepends, with lua/prelude/publish.lua.
local s = openStream(KEYS[1], ARGV[3], tonumber(ARGV[4]))
if not s then return C.NOT_A_STREAM end

local out = replyOf(s)
for i = 2, #KEYS do
  local id, code = '', nil
  local seen = redis.pcall('GET', KEYS[i])
  if type(seen) == 'table' and seen['err'] then
    code = C.MARKER_WRONG_TYPE
  elseif seen then
    if not string.match(seen, '^%d+%-%d+$') then
      code = C.MARKER_NOT_AN_ID
    elseif s.exists and #redis.call('XRANGE', s.key, seen, seen) > 0 then
      id, code = seen, C.REPEAT_PRESENT
    elseif s.lastDelivered and cmpId(seen, s.lastDelivered) <= 0 then
      id, code = seen, C.REPEAT_DELIVERED
    end
  end
  if code == nil and atLimit(s) then code = C.NO_ROOM end
  if code == nil then
    id = redis.call('XADD', s.key, 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[i + 3])
    redis.call('SET', KEYS[i], id, 'PX', ARGV[1])
    added(s)
    code = seen and C.ADDED_OVER_STALE_MARKER or C.ADDED
  end
  out[#out + 1] = id
  out[#out + 1] = code
end
return finish(s, out)
