-- wrk script: POSTs the Nova reward-Lambda payload named by the first script argument.
-- Usage: wrk -s bench/lambda.lua URL -- PAYLOAD.json
function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = f:read("*a")
  f:close()
end

function done(summary, latency, requests)
  io.write(string.format("requests/s %.1f  errors %d  non-2xx %d\n",
    summary.requests / (summary.duration / 1e6), summary.errors.status + summary.errors.connect +
    summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status))
  for _, p in pairs({ 50, 90, 99 }) do
    io.write(string.format("p%d %.2f ms\n", p, latency:percentile(p) / 1000))
  end
end
