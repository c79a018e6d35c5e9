"""The directory's Lua scripts: each is one atomic step, so no two nodes ever interleave.

Redis runs a script with nothing else in between (single-threaded), which is what makes the
caps exact across nodes: count, compare and insert happen as one. Times come from the Redis
server's clock (`TIME`), never a node's, so nodes with skewed clocks agree on expiry.

Keys, under the prefix P (ARGV[1], e.g. "hlstrio:"):

    P s:<id>              HASH   the session record (fields below), PEXPIRE session_ttl
    P all                 ZSET   every live session id, score = its expiry (ms)
    P tx                  ZSET   the transcodes among them, same scores
    P u:<user>            ZSET   a user's session ids, same scores
    P m:<media>:<user>    STRING the user's session for that media (reuse / replace)
    P end:<id>            STRING tombstone of an ended session (10 min): "ended", not "lost"
    P node:<name>         STRING a node's heartbeat (its advertised address), 3 sync intervals
    P ev                  channel "end <id>", "lease <id> <node>", "done <id> <node>"

Record fields: id user media params tx node created access state snap live seen lease
lease_until epoch. `lease` names the node that runs the encoder of a transcode; `epoch` grows
each time the lease moves, and `seen` is the node that last reported a request.

Sets count only members whose score (expiry) is in the future: every script that counts purges
the expired ones first, so a record that expired by its TTL frees its slot with no sweeper.
"""

from __future__ import annotations

# Shared by every script: ARGV[1] is the prefix.
_PRELUDE = """
local P = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function purge(key, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
end
local function drop(id, why)
  local k = P .. 's:' .. id
  local rec = redis.call('HGETALL', k)
  if #rec == 0 then return rec end
  local f = redis.call('HMGET', k, 'user', 'media')
  redis.call('DEL', k)
  redis.call('ZREM', P .. 'all', id)
  redis.call('ZREM', P .. 'tx', id)
  redis.call('ZREM', P .. 'u:' .. f[1], id)
  local mk = P .. 'm:' .. f[2] .. ':' .. f[1]
  if redis.call('GET', mk) == id then redis.call('DEL', mk) end
  redis.call('SET', P .. 'end:' .. id, why, 'PX', 600000)
  redis.call('PUBLISH', P .. 'ev', 'end ' .. id)
  return rec
end
local function index(id, user, media, tx, expiry, ttl, only_if_free)
  redis.call('ZADD', P .. 'all', expiry, id)
  redis.call('ZADD', P .. 'u:' .. user, expiry, id)
  if tx == '1' then redis.call('ZADD', P .. 'tx', expiry, id) end
  local mk = P .. 'm:' .. media .. ':' .. user
  if only_if_free then
    redis.call('SET', mk, id, 'PX', ttl, 'NX')
  else
    redis.call('SET', mk, id, 'PX', ttl)
  end
end
local function fields(first)
  local r = {}
  for i = first, #ARGV, 2 do r[ARGV[i]] = ARGV[i + 1] end
  return r
end
"""

# ARGV: P, ttl_ms, max_sessions, max_per_user, max_transcodes, then the new record as
# field/value pairs. -> {"reuse", record} | {"cap", name, limit} | {"ok", replaced id or ""}
RESERVE = (
    _PRELUDE
    + """
local ttl = tonumber(ARGV[2])
local max_all, max_user, max_tx = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local r = fields(6)
local now = now_ms()
local all, tx, uk = P .. 'all', P .. 'tx', P .. 'u:' .. r.user
purge(all, now)
purge(tx, now)
purge(uk, now)
local current = redis.call('GET', P .. 'm:' .. r.media .. ':' .. r.user)
local total = redis.call('ZCARD', all)
local mine, encoders = redis.call('ZCARD', uk), redis.call('ZCARD', tx)
if current then
  local c = redis.call('HMGET', P .. 's:' .. current, 'params', 'state')
  if not c[1] then
    current = false  -- its record expired: the mapping is stale
  elseif c[1] == r.params and (c[2] == 'starting' or c[2] == 'running' or c[2] == 'idle') then
    return {'reuse', redis.call('HGETALL', P .. 's:' .. current)}
  else
    -- It is replaced: its slots are free for the new one.
    if redis.call('ZSCORE', all, current) then total = total - 1 end
    if redis.call('ZSCORE', uk, current) then mine = mine - 1 end
    if redis.call('ZSCORE', tx, current) then encoders = encoders - 1 end
  end
end
if total >= max_all then return {'cap', 'max_sessions', max_all} end
if mine >= max_user then return {'cap', 'max_sessions_per_user', max_user} end
if r.tx == '1' and encoders >= max_tx then return {'cap', 'max_transcodes', max_tx} end
if current then drop(current, 'replaced') end
local k = P .. 's:' .. r.id
redis.call('HSET', k, unpack(ARGV, 6))
redis.call('PEXPIRE', k, ttl)
index(r.id, r.user, r.media, r.tx, now + ttl, ttl, false)
return {'ok', current or ''}
"""
)

# ARGV: P, id, node, want_lease ("1"/"0"), lease_ms
# -> nil (no such session) | {record, previous lease holder or ""}
ADOPT = (
    _PRELUDE
    + """
local id, node, want, lease_ms = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local k = P .. 's:' .. id
local f = redis.call('HMGET', k, 'tx', 'lease')
if not f[1] then return nil end
local previous = ''
if f[1] == '1' and want == '1' then
  local holder = f[2] or ''
  if holder ~= node then
    previous = holder
    redis.call('HINCRBY', k, 'epoch', 1)
    -- The encoder follows the player: the holder (if any) stops its own at once.
    if holder ~= '' then redis.call('PUBLISH', P .. 'ev', 'lease ' .. id .. ' ' .. node) end
  end
  redis.call('HSET', k, 'lease', node, 'lease_until', now_ms() + lease_ms)
end
redis.call('HSET', k, 'seen', node)
return {redis.call('HGETALL', k), previous}
"""
)

# ARGV: P, node, lease_ms, ttl_ms, heartbeat_ms, advertise, then per session held by the node
# 5 values: id, access ("" = no request since the last sync), live JSON ("" = unchanged),
# state, held ("1" = the node runs its encoder under the lease).
# -> one status character per session: "." fine, "g" ended elsewhere, "l" lease taken by
# another node, "r" record lost (no tombstone: Redis lost its data), "o" another node served
# it last.
SYNC = (
    _PRELUDE
    + """
local node, lease_ms, ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('SET', P .. 'node:' .. node, ARGV[6], 'PX', tonumber(ARGV[5]))
local now = now_ms()
local out = {}
for i = 7, #ARGV, 5 do
  local id, access, live, state, held = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local k = P .. 's:' .. id
  local f = redis.call('HMGET', k, 'user', 'media', 'lease', 'seen', 'tx')
  local status = '.'
  if not f[1] then
    if redis.call('EXISTS', P .. 'end:' .. id) == 1 then status = 'g' else status = 'r' end
  elseif held == '1' and f[3] ~= node then
    status = 'l'
  else
    if live ~= '' then redis.call('HSET', k, 'live', live, 'state', state) end
    if access ~= '' then
      redis.call('HSET', k, 'access', access, 'seen', node)
      redis.call('PEXPIRE', k, ttl)
      local mk = P .. 'm:' .. f[2] .. ':' .. f[1]
      if redis.call('GET', mk) == id then redis.call('PEXPIRE', mk, ttl) end
      redis.call('ZADD', P .. 'all', now + ttl, id)
      redis.call('ZADD', P .. 'u:' .. f[1], now + ttl, id)
      if f[5] == '1' then redis.call('ZADD', P .. 'tx', now + ttl, id) end
    elseif f[4] and f[4] ~= node then
      status = 'o'
    end
    if held == '1' then redis.call('HSET', k, 'lease_until', now + lease_ms) end
  end
  out[#out + 1] = status
end
return table.concat(out)
"""
)

# ARGV: P, ttl_ms, then the record as field/value pairs: put back a record Redis lost (after a
# restart without persistence), unless it was ended (tombstone) or exists. Caps are not
# checked: the session exists, on this node. -> "ok" | "ended" | "exists"
RESTORE = (
    _PRELUDE
    + """
local ttl = tonumber(ARGV[2])
local r = fields(3)
local k = P .. 's:' .. r.id
if redis.call('EXISTS', P .. 'end:' .. r.id) == 1 then return 'ended' end
if redis.call('EXISTS', k) == 1 then return 'exists' end
redis.call('HSET', k, unpack(ARGV, 3))
redis.call('PEXPIRE', k, ttl)
-- A newer session of the user for this media keeps the mapping.
index(r.id, r.user, r.media, r.tx, now_ms() + ttl, ttl, true)
return 'ok'
"""
)

# ARGV: P, id, user -> nil (none, or another user's) | {record, node to wait for or ""}
# The node to wait for runs the encoder under a lease that has not expired: DELETE answers once
# it said "done" (its encoder dead, its temp dir gone).
END = (
    _PRELUDE
    + """
local id, user = ARGV[2], ARGV[3]
local k = P .. 's:' .. id
local f = redis.call('HMGET', k, 'user', 'lease', 'lease_until')
if not f[1] or f[1] ~= user then return nil end
local wait = ''
if f[2] and f[2] ~= '' and tonumber(f[3] or '0') > now_ms() then wait = f[2] end
return {drop(id, 'deleted'), wait}
"""
)

# ARGV: P, id, node: give up the lease if this node holds it (its copy ended here).
RELEASE = (
    _PRELUDE
    + """
local k = P .. 's:' .. ARGV[2]
if redis.call('HGET', k, 'lease') == ARGV[3] then
  redis.call('HSET', k, 'lease', '', 'lease_until', '0')
  return 1
end
return 0
"""
)

# ARGV: P, user -> the user's live records, oldest first.
OWNED = (
    _PRELUDE
    + """
local uk = P .. 'u:' .. ARGV[2]
purge(uk, now_ms())
local out = {}
for _, id in ipairs(redis.call('ZRANGE', uk, 0, -1)) do
  local rec = redis.call('HGETALL', P .. 's:' .. id)
  if #rec > 0 then out[#out + 1] = rec else redis.call('ZREM', uk, id) end
end
return out
"""
)
