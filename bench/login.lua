-- wrk script for bench/run.sh scenario h: every request is an OAuth2
-- password grant for the benchmark's account.
--
-- Usage: wrk ... -s bench/login.lua URL/auth/token -- USERNAME PASSWORD

local body

function init(args)
  local function enc(s)
    return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", c:byte()) end))
  end
  body = "grant_type=password&username=" .. enc(args[1]) .. "&password=" .. enc(args[2])
end

function request()
  return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
