/**
 * The Redis store's writes, each one Lua script: Redis runs a script whole, with no other command in between,
 * so a set, a folder move or a folder removal is seen before or after, never half done, and a manager killed
 * while it sends one leaves nothing half written. Every script first checks the lease's fencing token in the
 * same script (issue 20 item 2), and checks everything it will refuse before its first write: Redis does not
 * roll a script back.
 *
 * Keys, under the prefix P (REDIS_PREFIX):
 *   P store:file:<path>  hash: data (the text, or a sealed value), gen (the stamp), kid (the key id, when sealed)
 *   P store:dir:<dir>    set: the names directly under <dir> ("" is the top), kept by the same scripts, so that
 *                        list() never scans the keyspace. A folder exists while it holds something.
 *   P store:gen          the counter every write takes its stamp from: a path removed and written again never
 *                        gets a stamp it had before.
 *   P store:dgen:<dir>   a folder's generation (issue 22): the store:gen of the last write, removal or move of a
 *                        file under <dir>, set by the same script; gone with the folder. A folder's stamp is this one
 *                        value, so the store index stamps a certificate with one MGET entry instead of a command per
 *                        file. A folder written before generations existed has none until its next write (the
 *                        reader then asks its files, stamps.ts).
 *   P store:kids         hash: encryption key id -> how many values are sealed with it (init() checks it)
 *   P lease              the lease (lease.ts)
 * Keys are built inside the scripts, so this needs one Redis (or a Sentinel-managed primary), not a Cluster.
 */

/** ARGV[1] the prefix, ARGV[2] the fencing token; the caller's own arguments follow. */
const PRELUDE = `
local P = ARGV[1]
local function fkey(p) return P .. 'store:file:' .. p end
local function dkey(p) return P .. 'store:dir:' .. p end
local function gkey(p) return P .. 'store:dgen:' .. p end
local KIDS = P .. 'store:kids'
local function parent(p)
  local i = p:match('^.*()/')
  if i then return p:sub(1, i - 1), p:sub(i + 1) end
  return '', p
end
-- A file under every folder of p's path changed at generation g: their generations move (the top has none).
local function touch(p, g)
  local dir = parent(p)
  while dir ~= '' do
    redis.call('SET', gkey(dir), g)
    dir = parent(dir)
  end
end
local function link(p)
  while true do
    local dir, name = parent(p)
    if redis.call('SADD', dkey(dir), name) == 0 or dir == '' then return end
    p = dir
  end
end
local function unlink(p)
  while p ~= '' do
    local dir, name = parent(p)
    redis.call('SREM', dkey(dir), name)
    if dir == '' or redis.call('SCARD', dkey(dir)) > 0 then return end
    redis.call('DEL', gkey(dir))
    p = dir
  end
end
local function uncount(k)
  local kid = redis.call('HGET', k, 'kid')
  if kid then redis.call('HINCRBY', KIDS, kid, -1) end
end
-- Why a file cannot be written at p (a folder there, or a file where a folder of its path must be), or nil.
local function blocked(p)
  if redis.call('EXISTS', dkey(p)) == 1 then return 'CWCONFLICT ' .. p .. ' is a folder' end
  local a = p
  while true do
    local dir = parent(a)
    if dir == '' then return nil end
    if redis.call('EXISTS', fkey(dir)) == 1 then return 'CWCONFLICT ' .. dir .. ' is a file' end
    a = dir
  end
end
-- Every file under folder d, as paths relative to it, and every folder under it (d included).
local function walk(d)
  local files, dirs, todo = {}, {}, { '' }
  while #todo > 0 do
    local rel = table.remove(todo)
    local full = d
    if rel ~= '' then full = d .. '/' .. rel end
    dirs[#dirs + 1] = full
    for _, name in ipairs(redis.call('SMEMBERS', dkey(full))) do
      local r = name
      if rel ~= '' then r = rel .. '/' .. name end
      if redis.call('EXISTS', fkey(d .. '/' .. r)) == 1 then files[#files + 1] = r else todo[#todo + 1] = r end
    end
  end
  return files, dirs
end
local cur = redis.call('GET', P .. 'lease')
if cur ~= ARGV[2] then return redis.error_reply('CWFENCE ' .. (cur or '')) end
`;

/** ARGV[3..]: path, data, kid ('' when not sealed), repeated: all written together, or none. */
export const WRITE = `${PRELUDE}
for i = 3, #ARGV, 3 do
  local why = blocked(ARGV[i])
  if why then return redis.error_reply(why) end
end
local gen = redis.call('INCR', P .. 'store:gen')
for i = 3, #ARGV, 3 do
  local k = fkey(ARGV[i])
  uncount(k)
  redis.call('DEL', k)
  if ARGV[i + 2] ~= '' then
    redis.call('HSET', k, 'data', ARGV[i + 1], 'gen', gen, 'kid', ARGV[i + 2])
    redis.call('HINCRBY', KIDS, ARGV[i + 2], 1)
  else
    redis.call('HSET', k, 'data', ARGV[i + 1], 'gen', gen)
  end
  link(ARGV[i])
  touch(ARGV[i], gen)
end
return gen
`;

/** ARGV[3]: the path, a file or a folder with all it holds. Returns how many files went. */
export const REMOVE = `${PRELUDE}
local p = ARGV[3]
if redis.call('EXISTS', fkey(p)) == 1 then
  uncount(fkey(p))
  redis.call('DEL', fkey(p))
  touch(p, redis.call('INCR', P .. 'store:gen'))
  unlink(p)
  return 1
end
if redis.call('EXISTS', dkey(p)) == 0 then return 0 end
local files, dirs = walk(p)
for _, r in ipairs(files) do
  uncount(fkey(p .. '/' .. r))
  redis.call('DEL', fkey(p .. '/' .. r))
end
for _, d in ipairs(dirs) do
  redis.call('DEL', dkey(d))
  redis.call('DEL', gkey(d))
end
touch(p, redis.call('INCR', P .. 'store:gen'))
unlink(p)
return #files
`;

/** ARGV[3] from, ARGV[4] to. A file replaces a file at \`to\`; a folder needs \`to\` absent. Returns how many files moved. */
export const MOVE = `${PRELUDE}
local from, to = ARGV[3], ARGV[4]
if from == to then return 0 end
if redis.call('EXISTS', fkey(from)) == 1 then
  local why = blocked(to)
  if why then return redis.error_reply(why) end
  uncount(fkey(to))
  local gen = redis.call('INCR', P .. 'store:gen')
  redis.call('RENAME', fkey(from), fkey(to))
  redis.call('HSET', fkey(to), 'gen', gen)
  touch(from, gen)
  unlink(from)
  link(to)
  touch(to, gen)
  return 1
end
if redis.call('EXISTS', dkey(from)) == 0 then return redis.error_reply('CWABSENT ' .. from) end
if to:sub(1, #from + 1) == from .. '/' then return redis.error_reply('CWCONFLICT ' .. to .. ' is inside ' .. from) end
if redis.call('EXISTS', fkey(to)) == 1 or redis.call('EXISTS', dkey(to)) == 1 then return redis.error_reply('CWCONFLICT ' .. to .. ' exists') end
local why = blocked(to)
if why then return redis.error_reply(why) end
local files, dirs = walk(from)
local gen = redis.call('INCR', P .. 'store:gen')
for _, r in ipairs(files) do
  redis.call('RENAME', fkey(from .. '/' .. r), fkey(to .. '/' .. r))
  redis.call('HSET', fkey(to .. '/' .. r), 'gen', gen)
end
for _, d in ipairs(dirs) do
  redis.call('DEL', dkey(d))
  redis.call('DEL', gkey(d))
end
for _, r in ipairs(files) do
  link(to .. '/' .. r)
  touch(to .. '/' .. r, gen)
end
touch(from, gen)
unlink(from)
return #files
`;

/**
 * Read only, no fence: ARGV[1] the prefix, ARGV[2] a path. A folder's generation; a file's gen; a folder written
 * before generations existed: its files' gens, so that it still has a stamp that moves; absent: nil.
 */
export const STAMP = `
local P, p = ARGV[1], ARGV[2]
local gen = redis.call('GET', P .. 'store:dgen:' .. p) or redis.call('HGET', P .. 'store:file:' .. p, 'gen')
if gen then return gen end
local names = redis.call('SMEMBERS', P .. 'store:dir:' .. p)
if #names == 0 then return false end
table.sort(names)
local parts = {}
for _, name in ipairs(names) do
  parts[#parts + 1] = name .. '=' .. (redis.call('HGET', P .. 'store:file:' .. p .. '/' .. name, 'gen') or 'dir')
end
return 'files:' .. table.concat(parts, ',')
`;
