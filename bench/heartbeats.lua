-- wrk script for bench/heartbeats.sh: each thread sends heartbeats, in turn, for its share of
-- the sessions listed in the file given after `--` ("<session_id> <token>" per line), with a
-- seq that grows per session, as players do.
local threads = 0

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

local sessions, seqs, n, i = {}, {}, 0, 0

function init(args)
  local k, count = tonumber(thread_id), tonumber(args[2] or "2")
  local line_no = 0
  for line in io.lines(args[1]) do
    if line_no % count == k then
      local id, token = line:match("(%S+) (%S+)")
      n = n + 1
      sessions[n] = { id = id, token = token }
      seqs[n] = 0
    end
    line_no = line_no + 1
  end
end

function request()
  i = i % n + 1
  seqs[i] = seqs[i] + 1
  local s = sessions[i]
  local body = string.format('{"token":"%s","seq":%d,"state":"playing","play_ms":0}', s.token, seqs[i])
  return wrk.format("POST", "/api/v1/sessions/" .. s.id .. "/heartbeat", { ["Content-Type"] = "text/plain" }, body)
end
