-- luacheck configuration of this repository. The Factom bundle (lua/,
-- handlers/) and examples/ are checked against share/luacheckrc, the file
-- bundle authors get: only what serfhand's sandbox offers. The repository's
-- own Lua tests (tests/lua) also reach for what the sandbox removed, to show
-- that it is gone, so they keep the whole Lua 5.4 standard library.
local rc
for _, p in ipairs({ "share/luacheckrc", "../share/luacheckrc", "../../share/luacheckrc" }) do
  rc = setfenv and loadfile(p) or loadfile(p, "t", _ENV)
  if rc then break end
end
assert(rc, "share/luacheckrc not found: run luacheck from the repository")
if setfenv then setfenv(rc, getfenv(1)) end
rc()
max_line_length = 130
files["tests/lua"] = {
  std = "lua54+serfhand_test",
  not_globals = { "io", "os", "package", "debug", "dofile", "loadfile" },
  allow_defined_top = true,
  max_line_length = false,
}
