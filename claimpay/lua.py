"""The job store's atomic steps, as Lua scripts run inside Redis.

Each script says what KEYS and ARGV it takes. Together they make chunk accounting
idempotent: a chunk is claimed under a lease, recorded once, and the job finishes once.
"""

# Times compared across hosts (`progressTs`, `sealedTs`) come from Redis's clock (`TIME`),
# never a host's; Redis >= 5 replicates a script's effects, so reading TIME is allowed.
NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
"""

# A Lua function the scripts that change a job's state start with (after NOW): it moves
# the job from the listing index of its old state to that of its new one
# (`StoreKeys.jobs_in_state`, `<listIndex>:<state>`, scored by submission time), dropping
# entries older than the TTL from the new one. Jobs stored before `listIndex` existed are
# not moved.
RESTATE = """
local function restate(meta, job_id, from, to, ttl)
  local found = redis.call('HMGET', meta, 'listIndex', 'submittedTs')
  if not found[1] or not found[2] then return end
  if from then redis.call('ZREM', found[1] .. ':' .. from, job_id) end
  local index = found[1] .. ':' .. to
  redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. (now - tonumber(ttl)))
  redis.call('ZADD', index, found[2], job_id)
  redis.call('EXPIRE', index, ttl)
end
"""

# KEYS: meta, done, started, lease, deliveries.
# ARGV: chunk_no, owner, lease_ttl_s, max_deliveries, now_iso, ttl_s, job_id.
# A lease held by 'retry' (a retry waiting for its countdown) may be taken over.
# Returns: 'missing' | 'done' | 'busy' (another live worker holds it) | 'cancelled' |
#          'poison' (claimed too often) | 'run' (lease taken).
CLAIM_CHUNK = (
    NOW
    + RESTATE
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'missing' end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'done' end
local holder = redis.call('GET', KEYS[4])
if holder and holder ~= 'retry' and holder ~= ARGV[2] then return 'busy' end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return 'cancelled' end
redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[6])
local n = redis.call('HINCRBY', KEYS[5], ARGV[1], 1)
redis.call('EXPIRE', KEYS[5], ARGV[6])
redis.call('HSET', KEYS[1], 'progressTs', now)
if state == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'running', 'startedAt', ARGV[5])
  restate(KEYS[1], ARGV[7], 'queued', 'running', ARGV[6])
end
if n > tonumber(ARGV[4]) then return 'poison' end
return 'run'
"""
)

# KEYS: lease. ARGV: owner, ttl_s. Extends the lease only while `owner` holds it.
RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: meta, done, results, rows, lease, started, active, stats, ended (channel).
# ARGV: chunk_no, results, processed, created, updated, not_processed, failed,
#       finished_at, ttl_s, job_id, keep_rows (1: keep the rows for a rerun),
#       round (the rerun round the recorder applied), then the duration histogram's
#       bucket bounds, ascending (`stats.JOB_DURATION_BUCKETS_S`, as `stats.bound_label`).
# Returns -2 when the job has moved on to another rerun round (a late recorder of an
# earlier round must not count its stale results), -1 when the job is gone (expired),
# 0 when the chunk was already counted, 1 when
# counted, 2 when it finished the job. The deployment stats (`claimpay.stats`) move with
# the job: a chunk's rows once (a dry run's as `rows:dryRun`, whatever their outcome; a
# rerun round's rows again, as the outcome of another attempt), a job's end and its
# duration (from sealing) once.
RECORD_CHUNK = (
    NOW
    + RESTATE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if tonumber(redis.call('HGET', KEYS[1], 'round') or '0') ~= tonumber(ARGV[12]) then
  return -2
end
redis.call('DEL', KEYS[5])
redis.call('SREM', KEYS[6], ARGV[1])
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[9])
redis.call('EXPIRE', KEYS[2], ARGV[9])
if ARGV[11] == '1' then
  redis.call('EXPIRE', KEYS[4], ARGV[9])
else
  redis.call('DEL', KEYS[4])
end
redis.call('HINCRBY', KEYS[1], 'processed', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'created', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'updated', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'notProcessed', ARGV[6])
redis.call('HINCRBY', KEYS[1], 'failed', ARGV[7])
redis.call('HSET', KEYS[1], 'progressTs', now)
if redis.call('HGET', KEYS[1], 'dryRun') == '1' then
  redis.call('HINCRBY', KEYS[8], 'rows:dryRun', ARGV[3])
else
  redis.call('HINCRBY', KEYS[8], 'rows:created', ARGV[4])
  redis.call('HINCRBY', KEYS[8], 'rows:updated', ARGV[5])
  redis.call('HINCRBY', KEYS[8], 'rows:notProcessed', ARGV[6])
  redis.call('HINCRBY', KEYS[8], 'rows:failed', ARGV[7])
end
if redis.call('SCARD', KEYS[2]) >= tonumber(redis.call('HGET', KEYS[1], 'chunks')) then
  local final = 'completed'
  if redis.call('HGET', KEYS[1], 'cancel') == '1' then final = 'cancelled' end
  restate(KEYS[1], ARGV[10], redis.call('HGET', KEYS[1], 'state'), final, ARGV[9])
  redis.call('HSET', KEYS[1], 'state', final, 'finishedAt', ARGV[8])
  redis.call('ZREM', KEYS[7], ARGV[10])
  redis.pcall('PUBLISH', KEYS[9], ARGV[10])  -- best effort: waiters poll too
  local first_round = tonumber(ARGV[12]) == 0
  if first_round then redis.call('HINCRBY', KEYS[8], 'jobs:' .. final, 1) end
  if final == 'completed' and first_round then
    local sealed = tonumber(redis.call('HGET', KEYS[1], 'sealedTs') or now)
    local took = math.max(0, tonumber(now) - sealed)
    local bucket = '+Inf'
    for i = 13, #ARGV do
      if took <= tonumber(ARGV[i]) then bucket = ARGV[i]; break end
    end
    redis.call('HINCRBY', KEYS[8], 'duration:le:' .. bucket, 1)
    redis.call('HINCRBY', KEYS[8], 'duration:count', 1)
    redis.call('HINCRBYFLOAT', KEYS[8], 'duration:sum', took)
  end
  return 2
end
return 1
"""
)

# KEYS: an API key's job set. ARGV: job_id, now_ts, limit, ttl_s.
# Adds the job and counts; over `limit`, takes it out again. Returns 1 when admitted, 0 not.
ADMIT_JOB = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[3]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

# KEYS: meta, done, active, stats, ended (channel). ARGV: finished_at, job_id, ttl_s.
# Returns the job's state after the request, or false when there is no such job.
CANCEL_JOB = (
    NOW
    + RESTATE
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'receiving' then return false end
if state == 'completed' or state == 'cancelled' then return state end
redis.call('HSET', KEYS[1], 'cancel', '1', 'state', 'cancelling')
restate(KEYS[1], ARGV[2], state, 'cancelling', ARGV[3])
if redis.call('SCARD', KEYS[2]) >= tonumber(redis.call('HGET', KEYS[1], 'chunks')) then
  restate(KEYS[1], ARGV[2], 'cancelling', 'cancelled', ARGV[3])
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finishedAt', ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[2])
  redis.call('HINCRBY', KEYS[4], 'jobs:cancelled', 1)
  redis.pcall('PUBLISH', KEYS[5], ARGV[2])  -- best effort: waiters poll too
  return 'cancelled'
end
return 'cancelling'
"""
)

# KEYS: lease. ARGV: owner, ttl_s. While the retry of a chunk waits, the chunk stays leased
# (to 'retry') so recovery leaves it alone: only if `owner` still holds it, or nobody does
# (a lease that lapsed meanwhile); never over another worker's lease.
HOLD_FOR_RETRY = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and holder ~= 'retry' then return 0 end
redis.call('SET', KEYS[1], 'retry', 'EX', ARGV[2])
return 1
"""

# KEYS: stalled (a node's sorted set). ARGV: owner, ttl_s. Marks `owner` (a pool process's
# claim) stalled until Redis time + ttl_s, and forgets expired marks.
MARK_STALLED = (
    NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
)

# KEYS: stalled. Returns the owners whose stalled mark has not expired (Redis time).
STALLED = (
    NOW
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
"""
)

# KEYS: the sorted sets to list, one per database. ARGV: start, count, ttl_s, now_ts
# ('' = Redis's clock, the one submission times are written with).
# Returns {total, member, score, member, score, ...}: the entries of ranks
# [start, start + count) of the sets merged newest first (equal scores: the greater
# member first, as ZREVRANGE orders them), after removing entries older than the TTL.
# Several sets: the entry of merged rank `start` (the cut) is found by a binary search
# over each set's ranks, counting the entries before a candidate with ZCOUNT; then each
# set gives at most `count` entries from the cut on (plus those tied with it).
LIST_PAGE = """
local start, count = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = tonumber(ARGV[4])
if not now then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
end
local oldest = now - tonumber(ARGV[3])
local total, sizes = 0, {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. oldest)
  sizes[i] = redis.call('ZCARD', key)
  total = total + sizes[i]
end
local result = {total}
if start >= total or count <= 0 then return result end
if #KEYS == 1 then
  local found = redis.call('ZREVRANGE', KEYS[1], start, start + count - 1, 'WITHSCORES')
  for _, value in ipairs(found) do table.insert(result, value) end
  return result
end
local function ahead(score, member)
  local n = 0
  for _, key in ipairs(KEYS) do
    n = n + redis.call('ZCOUNT', key, '(' .. score, '+inf')
    for _, other in ipairs(redis.call('ZRANGEBYSCORE', key, score, score)) do
      if other > member then n = n + 1 end
    end
  end
  return n
end
local cut_score, cut_member
for i, key in ipairs(KEYS) do
  local lo, hi = 0, math.min(sizes[i], start + 1) - 1
  while lo <= hi and not cut_score do
    local mid = math.floor((lo + hi) / 2)
    local entry = redis.call('ZREVRANGE', key, mid, mid, 'WITHSCORES')
    local rank = ahead(entry[2], entry[1])
    if rank == start then cut_score, cut_member = entry[2], entry[1]
    elseif rank < start then lo = mid + 1
    else hi = mid - 1 end
  end
  if cut_score then break end
end
if not cut_score then return result end
local cut = tonumber(cut_score)
local entries = {}
for _, key in ipairs(KEYS) do
  local tied = redis.call('ZCOUNT', key, cut_score, cut_score)
  local found = redis.call(
    'ZREVRANGEBYSCORE', key, cut_score, '-inf', 'WITHSCORES', 'LIMIT', 0, count + tied)
  for j = 1, #found, 2 do
    local score = tonumber(found[j + 1])
    if score < cut or found[j] <= cut_member then
      table.insert(entries, {found[j], found[j + 1], score})
    end
  end
end
table.sort(entries, function(a, b)
  if a[3] ~= b[3] then return a[3] > b[3] end
  return a[1] > b[1]
end)
for j = 1, math.min(count, #entries) do
  table.insert(result, entries[j][1])
  table.insert(result, entries[j][2])
end
return result
"""

# The webhook outbox (`worker.outbox`): scores are Redis's clock (`TIME`, in ms), like
# every time compared across hosts.
NOW_MS = """
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: outbox, attempts. ARGV: job_id, delay_ms. Due after delay_ms, attempts forgotten.
SCHEDULE_WEBHOOK = (
    NOW_MS
    + """
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""
)

# KEYS: outbox, attempts. ARGV: lease_ms, limit, now_ms ('' = Redis's clock).
# Takes up to `limit` due entries, each rescored to now + lease and its attempts counted.
# Returns a flat list: job_id, claimed score, attempts (this one included), ...
CLAIM_WEBHOOKS = (
    NOW_MS
    + """
if ARGV[3] ~= '' then now_ms = tonumber(ARGV[3]) end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, ARGV[2])
local claimed = {}
local score = now_ms + tonumber(ARGV[1])
for _, job_id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', score, job_id)
  local attempts = redis.call('HINCRBY', KEYS[2], job_id, 1)
  table.insert(claimed, job_id)
  table.insert(claimed, score)
  table.insert(claimed, attempts)
end
return claimed
"""
)

# KEYS: outbox, attempts. ARGV: job_id, claimed score, retry_ms ('' = done: remove).
# Only the claim that is still current settles: a job scheduled again meanwhile (a retry
# round finished) keeps its new, earlier entry. Returns 1 when settled, 0 when not.
SETTLE_WEBHOOK = (
    NOW_MS
    + """
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not current or tonumber(current) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], 'XX', now_ms + tonumber(ARGV[3]), ARGV[1])
end
return 1
"""
)
