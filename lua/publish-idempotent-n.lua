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
--             C is the code table src/redis/scripts.ts prepends.
local stream = KEYS[1]
local group = ARGV[3]
local limit = tonumber(ARGV[4])
local streamType = redis.call('TYPE', stream)['ok']
if streamType ~= 'stream' and streamType ~= 'none' then
  return C.NOT_A_STREAM
end
local exists = streamType == 'stream'

-- Stream ids compared exactly, as decimal strings: a sequence may pass 2^53, a Lua number's limit.
local function cmpNum(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function cmpId(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  local c = cmpNum(ams, bms)
  if c ~= 0 then return c end
  return cmpNum(aseq, bseq)
end

-- The group's last-delivered-id, or false when there is no such group.
local lastDelivered = false
if exists and group ~= '' then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local name, last
    for j = 1, #g, 2 do
      if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then last = g[j + 1] end
    end
    if name == group then lastDelivered = last end
  end
end

-- Entries after the group's last-delivered-id, counted up to the limit (cost: that many entries).
local function countUnread()
  if not exists then return 0 end
  local len = redis.call('XLEN', stream)
  if not lastDelivered then return len end
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
  if last == nil or cmpId(lastDelivered, last[1]) >= 0 then return 0 end
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  if cmpId(lastDelivered, first[1]) < 0 then return len end
  -- inclusive start (exclusive ranges need Redis 6.2): drop the delivered entry itself
  local after = redis.call('XRANGE', stream, lastDelivered, '+', 'COUNT', limit + 1)
  local n = #after
  if n > 0 and after[1][1] == lastDelivered then n = n - 1 end
  if n > limit then n = limit end
  return n
end

local unread = -1
local out = { 0, lastDelivered and 1 or 0, lastDelivered or '' }
for i = 2, #KEYS do
  local id, code = '', nil
  local seen = redis.pcall('GET', KEYS[i])
  if type(seen) == 'table' and seen['err'] then
    code = C.MARKER_WRONG_TYPE
  elseif seen then
    if not string.match(seen, '^%d+%-%d+$') then
      code = C.MARKER_NOT_AN_ID
    elseif exists and #redis.call('XRANGE', stream, seen, seen) > 0 then
      id, code = seen, C.REPEAT_PRESENT
    elseif lastDelivered and cmpId(seen, lastDelivered) <= 0 then
      id, code = seen, C.REPEAT_DELIVERED
    end
  end
  if code == nil and limit > 0 then
    if unread < 0 then unread = countUnread() end
    if unread >= limit then code = C.NO_ROOM end
  end
  if code == nil then
    id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[i + 3])
    redis.call('SET', KEYS[i], id, 'PX', ARGV[1])
    exists = true
    if unread >= 0 then unread = unread + 1 end
    code = seen and C.ADDED_OVER_STALE_MARKER or C.ADDED
  end
  out[#out + 1] = id
  out[#out + 1] = code
end
if limit > 0 and unread < 0 then unread = countUnread() end
out[1] = unread
return out
