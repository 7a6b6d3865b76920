-- serfhand test --bundle examples/hello examples/hello/tests/fmt.lua
-- Files outside handlers/ and lua/ are not part of the signed bundle.
local fmt = require "hello.fmt"

T.test("members lists name@addr(role)", function()
  T.eq(fmt.members({ { name = "n1", addr = "10.0.0.1", role = "web", tags = {} },
                     { name = "n2", addr = "10.0.0.2", role = "db", tags = {} } }),
       "n1@10.0.0.1(web) n2@10.0.0.2(db)")
end)

T.test("no members, empty string", function()
  T.eq(fmt.members({}), "")
end)
