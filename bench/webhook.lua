-- wrk script for bench/webhook_bench.py: every request is a new Telegram update.
-- args: <update_id offset> <noop|updates|checkout> <payloads file>
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  offset = tonumber(args[1])
  mode = args[2]
  counter = 0
  payloads = {}
  if mode == "checkout" then
    for line in io.lines(args[3]) do
      local user, payload, amount = line:match("(%d+) (%S+) (%d+)")
      table.insert(payloads, {user = user, payload = payload, amount = amount})
    end
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Telegram-Bot-Api-Secret-Token"] = "bench-secret"
end

request = function()
  counter = counter + 1
  local id = offset + tid * 10000000 + counter
  local body
  if mode == "checkout" then
    local p = payloads[(counter + tid * 7919) % #payloads + 1]
    body = string.format(
      '{"update_id":%d,"pre_checkout_query":{"id":"q%d","from":{"id":%s,"is_bot":false,"first_name":"Bench","language_code":"en"},"currency":"USD","total_amount":%s,"invoice_payload":"%s"}}',
      id, id, p.user, p.amount, p.payload)
  else
    local user = 960000 + counter % 200
    body = string.format(
      '{"update_id":%d,"message":{"message_id":%d,"from":{"id":%d,"is_bot":false,"first_name":"Bench","language_code":"en"},"chat":{"id":%d,"type":"private"},"date":1763800000,"text":"/help"}}',
      id, counter, user, user)
  end
  return wrk.format(nil, nil, nil, body)
end
