-- wrk script: floods the `judged` reward (bench/judge/bench.sh) with one-rollout requests whose
-- question differs per request, so neither cache answers them.
local n = 0
function request()
  n = n + 1
  local body = string.format('{"reward":"judged","rollouts":[{"id":"j%d","completion":"judge question %d %d"}]}', n, n, math.random(1e9))
  return wrk.format("POST", "/v1/score", { ["Content-Type"] = "application/json" }, body)
end

function done(summary, latency, requests)
  io.write(string.format("judged requests/s %.1f  errors %d  non-2xx %d\n",
    summary.requests / (summary.duration / 1e6), summary.errors.status + summary.errors.connect +
    summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status))
end
