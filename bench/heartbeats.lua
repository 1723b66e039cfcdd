-- wrk script for bench/heartbeats.sh (run through bench/wrk.py): each thread sends
-- heartbeats, in turn, for its share of the sessions listed in the file given after `--`
-- ("<session_id> <token>" per line), with a seq that grows per session from 1, as players do.
-- The file must hold sessions minted for this run only: a session that already took beats
-- would answer `duplicate` to these seqs.
--
-- Every response is checked: status 204 and `X-Monsoon-Beat: accepted`. Anything else is a
-- failure, and bench/wrk.py fails the run when there is one, so a round can never be made of
-- refusals or error pages; and only accepted beats count in the rate ("counted"). One
-- exception, bounded: a session's beats here are milliseconds apart (a player's are 10 s),
-- so now and then one arrives after its successor, over another connection served by the
-- other HTTP thread, and is rightly answered `duplicate`. Up to 1 in 1,000 such answers are
-- tolerated (bench/wrk.py); a replay of old seqs, which makes most beats duplicates, fails.
-- The nginx peer answers the same header, so both sides parse the same responses.
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

local sessions, seqs, n, i = {}, {}, 0, 0
accepted, duplicates, failures, first_failure = 0, 0, 0, ""

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

-- A path in the URL is put before the API's (bench/heartbeats.sh's failure demonstration).
local prefix = (wrk.path == "/" or wrk.path == nil) and "" or wrk.path

function request()
  i = i % n + 1
  seqs[i] = seqs[i] + 1
  local s = sessions[i]
  local body = string.format('{"token":"%s","seq":%d,"state":"playing","play_ms":0}', s.token, seqs[i])
  return wrk.format("POST", prefix .. "/api/v1/sessions/" .. s.id .. "/heartbeat", { ["Content-Type"] = "text/plain" }, body)
end

function response(status, headers, body)
  local outcome
  for name, value in pairs(headers) do
    if string.lower(name) == "x-monsoon-beat" then outcome = value end
  end
  if status == 204 and outcome == "accepted" then
    accepted = accepted + 1
  elseif status == 204 and outcome == "duplicate" then
    duplicates = duplicates + 1
  else
    failures = failures + 1
    if first_failure == "" then
      first_failure = string.format("status %d, X-Monsoon-Beat %s", status, tostring(outcome))
    end
  end
end

function done(summary, latency, requests)
  local ok, dup, bad, first = 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("accepted")
    dup = dup + thread:get("duplicates")
    bad = bad + thread:get("failures")
    if first == "" then first = thread:get("first_failure") end
  end
  io.write(string.format('BENCH {"accepted":%d,"counted":%d,"duplicate":%d,"failures":%d,"checked":%d}\n',
    ok, ok, dup, bad, ok + dup + bad))
  if bad > 0 then io.stderr:write("first failed beat: " .. first .. "\n") end
end
