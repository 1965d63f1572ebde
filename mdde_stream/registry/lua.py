"""Lua scripts of the Redis backend, kept beside the Python rule they mirror (``codes.validate``).

Each script runs atomically inside Redis (EVALSHA), so a crash of the caller or of Redis never
leaves half an action: either the allocation bit, the queued move and the recorded verdict all
exist, or none does. Bit ``w * F + f`` of the ``alloc`` string is "node w holds fragment f" (bit 0
is the most significant bit of byte 0, which is numpy's ``packbits`` order).
"""

from __future__ import annotations

# KEYS: alloc, nidx, fidx, queue, seq, meta, verdicts (hash event id -> verdict), vorder (list of ids).
# ARGV: capacity (verdicts remembered, oldest forgotten first), then per action:
#       event_id, kind, fragment, source, target, present ("101": which of fragment/source/target are set).
# Returns per action: accepted (0/1), code (0 = none), message, duplicate (0/1); then the alloc bits.
APPLY = r"""
local alloc, nidx, fidx, queue, seqk, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local verdicts, vorder = KEYS[7], KEYS[8]
local capacity = tonumber(ARGV[1])
local F = tonumber(redis.call('HGET', meta, 'F'))
local W = tonumber(redis.call('HGET', meta, 'W'))
if not F or not W then
  return redis.error_reply('MDDE registry state is not set up (no ' .. meta .. ')')
end
local out = {}
local function q(s) return "'" .. s .. "'" end

local function judge(kind, frag, src, tgt, present)
  local has_f = string.sub(present, 1, 1) == '1'
  local has_s = string.sub(present, 2, 2) == '1'
  local has_t = string.sub(present, 3, 3) == '1'
  if kind == 'skip' then return 1, 0, '' end
  if kind == 'copy' then
    if not (has_f and has_s and has_t) then return 0, 2610, 'copy needs fragment, source and target' end
    local f = redis.call('HGET', fidx, frag)
    if not f then return 0, 2101, 'unknown fragment ' .. q(frag) end
    local s = redis.call('HGET', nidx, src)
    if not s then return 0, 2101, 'unknown node ' .. q(src) end
    local t = redis.call('HGET', nidx, tgt)
    if not t then return 0, 2101, 'unknown node ' .. q(tgt) end
    if s == t then return 0, 2602, 'cannot copy fragment ' .. q(frag) .. ' from node ' .. q(tgt) .. ' to itself' end
    f, s, t = tonumber(f), tonumber(s), tonumber(t)
    if redis.call('GETBIT', alloc, s * F + f) == 0 then
      return 0, 2606, 'fragment ' .. q(frag) .. ' is not on node ' .. q(src)
    end
    if redis.call('GETBIT', alloc, t * F + f) == 1 then
      return 0, 2601, 'node ' .. q(tgt) .. ' already holds fragment ' .. q(frag)
    end
    redis.call('SETBIT', alloc, t * F + f, 1)
    local seq = redis.call('INCR', seqk)
    redis.call('RPUSH', queue, cjson.encode({seq, 'copy', frag, src, tgt}))
    return 1, 0, ''
  end
  if kind == 'delete' then
    if not (has_f and has_t) then return 0, 2610, 'delete needs fragment and target' end
    local f = redis.call('HGET', fidx, frag)
    if not f then return 0, 2101, 'unknown fragment ' .. q(frag) end
    f = tonumber(f)
    local n = 0
    for w = 0, W - 1 do n = n + redis.call('GETBIT', alloc, w * F + f) end
    if n <= 1 then return 0, 2604, 'node ' .. q(tgt) .. ' holds the last replica of fragment ' .. q(frag) end
    local t = redis.call('HGET', nidx, tgt)
    if not t then return 0, 2101, 'unknown node ' .. q(tgt) end
    t = tonumber(t)
    if redis.call('GETBIT', alloc, t * F + f) == 0 then
      return 0, 2606, 'fragment ' .. q(frag) .. ' is not on node ' .. q(tgt)
    end
    redis.call('SETBIT', alloc, t * F + f, 0)
    local seq = redis.call('INCR', seqk)
    redis.call('RPUSH', queue, cjson.encode({seq, 'delete', frag, '', tgt}))
    return 1, 0, ''
  end
  return nil
end

local n = (#ARGV - 1) / 6
for i = 0, n - 1 do
  local k = ARGV[3 + i * 6]
  if k ~= 'skip' and k ~= 'copy' and k ~= 'delete' then
    return redis.error_reply('unknown action kind ' .. k)  -- checked before any write
  end
end
for i = 0, n - 1 do
  local b = 2 + i * 6
  local id = ARGV[b]
  local prev = redis.call('HGET', verdicts, id)
  if prev then
    local v = cjson.decode(prev)
    table.insert(out, v[1]); table.insert(out, v[2]); table.insert(out, v[3]); table.insert(out, 1)
  else
    local acc, code, msg = judge(ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5])
    redis.call('HSET', verdicts, id, cjson.encode({acc, code, msg}))
    if redis.call('RPUSH', vorder, id) > capacity then
      redis.call('HDEL', verdicts, redis.call('LPOP', vorder))
    end
    table.insert(out, acc); table.insert(out, code); table.insert(out, msg); table.insert(out, 0)
  end
end
table.insert(out, redis.call('GET', alloc))  -- the caller's cache, without another round trip
return out
"""

# KEYS: alloc, snap, queue, scratch. Returns the number of cells that differed.
RESET = r"""
redis.call('BITOP', 'XOR', KEYS[4], KEYS[1], KEYS[2])
local changed = redis.call('BITCOUNT', KEYS[4])
redis.call('DEL', KEYS[4])
redis.call('COPY', KEYS[2], KEYS[1], 'REPLACE')
redis.call('DEL', KEYS[3])
return changed
"""

# KEYS: queue, phys, meta, nidx, fidx. ARGV: the seqs of executed moves, in order.
# Pops each from the queue head and applies it to the physical matrix; already-popped ones are skipped.
COMPLETE = r"""
local F = tonumber(redis.call('HGET', KEYS[3], 'F'))
local done = 0
for i = 1, #ARGV do
  local want = tonumber(ARGV[i])
  local head = redis.call('LINDEX', KEYS[1], 0)
  if head then
    local m = cjson.decode(head)
    if m[1] == want then
      redis.call('LPOP', KEYS[1])
      local f = tonumber(redis.call('HGET', KEYS[5], m[3]))
      local t = tonumber(redis.call('HGET', KEYS[4], m[5]))
      local bit = 0
      if m[2] == 'copy' then bit = 1 end
      redis.call('SETBIT', KEYS[2], t * F + f, bit)
      done = done + 1
    elseif m[1] < want then
      return redis.error_reply('move seq ' .. want .. ' is not at the head of the shuffle queue')
    end
  end
end
return done
"""
