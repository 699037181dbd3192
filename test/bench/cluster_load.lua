-- wrk script for test/bench/cluster.bench.ts: unique 16-byte keys and 100-byte values, against
-- edgenode (/v1/var) or etcd's JSON gateway (/v3/kv/*, base64). Env: TARGET=edgenode|etcd,
-- OP=put|get, TAG (2 digits, keeps runs' keys apart), KEYS (get: keys preloaded as r%015d), STALE=1.
local target = os.getenv("TARGET") or "edgenode"
local op = os.getenv("OP") or "put"
local tag = tonumber(os.getenv("TAG") or "0")
local nkeys = tonumber(os.getenv("KEYS") or "1000")
local stale = os.getenv("STALE") == "1"
local counter = 0

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
  return ((s:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end

local value = string.rep("v", 100)
local value64 = b64(value)
local jsonHeaders = { ["Content-Type"] = "application/json" }

request = function()
  counter = counter + 1
  if op == "put" then
    local key = string.format("p%02d%013d", tag, counter)
    if target == "etcd" then
      return wrk.format("POST", "/v3/kv/put", jsonHeaders, '{"key":"' .. b64(key) .. '","value":"' .. value64 .. '"}')
    end
    return wrk.format("PUT", "/v1/var/" .. key, jsonHeaders, '{"Items":{"v":"' .. value .. '"}}')
  end
  local key = string.format("r%015d", math.random(0, nkeys - 1))
  if target == "etcd" then
    local body = '{"key":"' .. b64(key) .. '"' .. (stale and ',"serializable":true' or "") .. "}"
    return wrk.format("POST", "/v3/kv/range", jsonHeaders, body)
  end
  return wrk.format("GET", "/v1/var/" .. key .. (stale and "?stale" or ""), nil, nil)
end

done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"status_errors":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
