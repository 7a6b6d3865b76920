-- luacheck configuration: handlers run in serfhand's sandbox (Lua 5.4, no
-- io/os/package/debug); tests get the global T from `serfhand test`.
std = "lua54"
globals = {}
read_globals = {}
not_globals = { "io", "os", "package", "debug", "dofile", "loadfile" }
files["tests/lua"] = { read_globals = { "T" }, allow_defined_top = true, max_line_length = false }
max_line_length = 130
