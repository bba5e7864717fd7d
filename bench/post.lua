-- POST one body (read from BENCH_BODY) with the content type and, for Triton's binary
-- extension, the JSON header length given in the environment. BENCH_TOKEN adds
-- "Authorization: Bearer <token>". BENCH_VARY=<base> makes every request's body different
-- (for response cache misses): the first feature of a REST body becomes base + a request
-- counter + 0.5, a number below 2^23 (so it stays distinct as FP32) and, like the fixed
-- body's, a float (so the server parses and validates the same kind of row).
wrk.method = "POST"
local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
local header_length = os.getenv("BENCH_HEADER_LENGTH")
if header_length ~= nil and header_length ~= "" then
  wrk.headers["Inference-Header-Content-Length"] = header_length
end
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local vary = os.getenv("BENCH_VARY")
if vary ~= nil and vary ~= "" then
  local open = assert(string.find(wrk.body, "[[", 1, true)) + 1
  local comma = assert(string.find(wrk.body, ",", open, true))
  local prefix, suffix = string.sub(wrk.body, 1, open), string.sub(wrk.body, comma)
  local counter = tonumber(vary)
  request = function()
    counter = counter + 1
    return wrk.format(nil, nil, nil, prefix .. string.format("%d.5", counter) .. suffix)
  end
end
-- BENCH_USERS=<n> sends "X-User-ID: user-<k>", k cycling through n users (sticky
-- traffic splits: every request a user, the same users again and again).
local users = os.getenv("BENCH_USERS")
if users ~= nil and users ~= "" and (vary == nil or vary == "") then
  local count, user, headers = tonumber(users), 0, {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  request = function()
    user = (user + 1) % count
    headers["X-User-ID"] = "user-" .. user
    return wrk.format(nil, nil, headers, nil)
  end
end
