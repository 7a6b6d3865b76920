# types/ (the LuaLS annotations authors get) and share/luacheckrc (the
# luacheck configuration for bundles) against what the sandbox really offers,
# so that neither can drift: host modules and their fields, ev, T, and the
# sandbox's globals and library functions.
. "$(dirname "$0")/../lib.sh"

LUA=$(command -v lua5.4 || true)
if [ -z "$LUA" ]; then
    fail "lua5.4 is needed to read types/ (make deps installs it)"
    finish
    exit 1
fi

# --- what types/ declares, read by the plain Lua interpreter ---------------
# "module NAME KEY" per declared field of a module (functions defined on the
# module table and ---@field lines of its class), "method CLASS NAME" per
# method of an object class, "ev KEY[?]", "T KEY".
cat > "$T_TMP/declared.lua" <<'LUA'
local dir = arg[1]
local function lines(path)
  local f = assert(io.open(path)); local s = f:read("a"); f:close(); return s
end
-- the ---@field names right after "---@class CLASS"
local function class_fields(src, class)
  local out, inside = {}, false
  for l in (src .. "\n"):gmatch("(.-)\n") do
    if l:match("^%-%-%-@class " .. class:gsub("%.", "%%.") .. "%s*$") then
      inside = true
    elseif inside then
      local f, opt = l:match("^%-%-%-@field ([%w_]+)(%??)")
      if f then out[#out + 1] = f .. opt elseif not l:match("^%-%-%-") then inside = false end
    end
  end
  return out
end
for i = 2, #arg do
  local m = arg[i]
  local path = dir .. "/" .. m .. ".lua"
  local src = lines(path)
  local mod = dofile(path)
  for k in pairs(mod) do print("module " .. m .. " " .. k) end
  for _, f in ipairs(class_fields(src, m)) do print("module " .. m .. " " .. f) end
  for class, name in src:gmatch("\nfunction ([%w_]+):([%w_]+)%(") do
    print("method " .. m .. "." .. class .. " " .. name)
  end
end
local h = lines(dir .. "/handler.lua")
for _, f in ipairs(class_fields(h, "serfhand.Event")) do print("ev " .. f) end
for _, f in ipairs(class_fields(h, "serfhand.EventSelf")) do print("self " .. f) end
for _, f in ipairs(class_fields(h, "serfhand.EventMember")) do print("member " .. f) end
for _, f in ipairs(class_fields(h, "serfhand.EventBundle")) do print("bundle " .. f) end
dofile(dir .. "/test.lua")
for k in pairs(T) do print("T " .. k) end
LUA

# The host modules sandbox.c preloads, from its one table.
MODS=$(sed -n '/host_modules\[\] = {/,/NULL, NULL/p' "$TOP/src/sandbox.c" |
    grep -oE '"serfhand\.[a-z_]+"' | tr -d '"' | sort)
TYPED=$(cd "$TOP/types" && ls serfhand.*.lua | sed 's/\.lua$//' | sort)
expect_eq "types/ has one file per host module in src/sandbox.c" "$TYPED" "$MODS"
check "at least the modules of docs/lua-api.md are there" \
    sh -c "printf '%s\n' '$MODS' | grep -qx serfhand.store"

# shellcheck disable=SC2086
"$LUA" "$T_TMP/declared.lua" "$TOP/types" $MODS > "$T_TMP/declared.all" 2> "$T_TMP/declared.err"
expect_eq "types/ files run as plain Lua (LuaLS meta files)" "$(cat "$T_TMP/declared.err")" ""

# --- what the sandbox has, from inside it (serfhand test) ------------------
{
    echo 'local mods = {'
    for m in $MODS; do echo "  \"$m\","; done
    echo '}'
    cat <<'LUA'
for _, m in ipairs(mods) do
  for k in pairs(require(m)) do T.report("module " .. m .. " " .. k) end
end
-- objects whose metatable is hidden: probe the declared methods
local sk = require("serfhand.crypto").ed25519_keypair()
for _, name in ipairs(METHODS_SecretKey) do
  if type(sk[name]) == "function" then T.report("method serfhand.crypto.SecretKey " .. name) end
end
for k in pairs(T) do T.report("T " .. k) end
LUA
} > "$T_TMP/live_head.lua"
# serfhand.identity's Identity needs a factomd.conf: its methods are checked
# against src/lidentity.c's method table instead.
METHODS=$(grep '^method serfhand.crypto.SecretKey ' "$T_TMP/declared.all" | awk '{printf "\"%s\", ", $3}')
{ echo "local METHODS_SecretKey = { $METHODS }"; cat "$T_TMP/live_head.lua"; } > "$T_TMP/live.lua"
mkdir -p "$T_TMP/empty"
printf 'state_dir = "%s/state"\nlog = { target = "%s/log" }\n' "$T_TMP" "$T_TMP" > "$T_TMP/conf"
"$SERFHAND" -c "$T_TMP/conf" test --bundle "$T_TMP/empty" "$T_TMP/live.lua" > "$T_TMP/live.out" 2>&1
grep -E '^(module|method|T) ' "$T_TMP/live.out" | sort > "$T_TMP/live"
grep -E '^(module|method serfhand\.crypto\.SecretKey|T) ' "$T_TMP/declared.all" | sort > "$T_TMP/declared"
check "the sandbox listed its modules" grep -q '^module serfhand.crypto blake2b$' "$T_TMP/live"

D=$(diff "$T_TMP/declared" "$T_TMP/live")
expect_eq "types/ declares exactly the live module fields, SecretKey methods and T (< types only, > live only)" "$D" ""

ID_LIVE=$(sed -n '/id_methods\[\] = {/,/NULL, NULL/p' "$TOP/src/lidentity.c" | grep -oE '\{"[a-z_]+"' | tr -d '{"' | sort)
ID_DECL=$(grep '^method serfhand.identity.Identity ' "$T_TMP/declared.all" | awk '{print $3}' | sort)
expect_eq "types/ declares the Identity object's methods of src/lidentity.c" "$ID_DECL" "$ID_LIVE"

# --- ev, as event.c and run.c build it -------------------------------------
mkdir -p "$T_TMP/b/handlers/query" "$T_TMP/b/handlers/user" "$T_TMP/b/lua"
cat > "$T_TMP/b/lua/keys.lua" <<'LUA'
-- every key of ev and its sub-tables, one "KIND key" per line, sorted
return function(ev)
  local out = {}
  local function add(kind, t) for k in pairs(t) do out[#out + 1] = kind .. " " .. k end end
  add("ev", ev); add("self", ev.self); add("bundle", ev.bundle)
  for _, m in ipairs(ev.members) do add("member", m) end
  table.sort(out)
  local seen, uniq = {}, {}
  for _, l in ipairs(out) do if not seen[l] then seen[l] = true; uniq[#uniq + 1] = l end end
  return table.concat(uniq, "\n")
end
LUA
echo 'return require "keys"' > "$T_TMP/b/handlers/query/keys.lua"
echo 'local k = require "keys"; return function(ev) print("KEYS " .. k(ev):gsub("\n", ";") .. " END") end' > "$T_TMP/b/handlers/user/keys.lua"
echo 'local k = require "keys"; return function(ev) print("KEYS " .. k(ev):gsub("\n", ";") .. " END") end' > "$T_TMP/b/handlers/member-join.lua"
run() { "$SERFHAND" -c "$T_TMP/conf" run --unsigned --bundle "$T_TMP/b" "$@"; }
Q=$(run query --name keys --payload x --tag role=web 2>/dev/null)
# a log line escapes newlines: the handlers log "KEYS a;b;c END"
keys_of() { sed -n 's/.*KEYS \(.*\) END.*/\1/p' | tr ';' '\n'; }
U=$(run user --name keys --payload x 2>&1 >/dev/null | keys_of)
M=$(run member-join --member "$(printf 'n1\t127.0.0.1\tweb\trole=web')" 2>&1 >/dev/null | keys_of)
check "the query handler listed ev's keys" sh -c "printf '%s\n' '$Q' | grep -qx 'ev payload'"
check "the member-join handler listed a member's keys" sh -c "printf '%s\n' '$M' | grep -qx 'member addr'"
DECL_ALL=$(grep -E '^(ev|self|bundle|member) ' "$T_TMP/declared.all" | tr -d '?' | sort)
DECL_REQ=$(grep -E '^(ev|self|bundle|member) ' "$T_TMP/declared.all" | grep -v '?$' | sort)
for kind in query user member-join; do
    case $kind in query) L=$Q ;; user) L=$U ;; member-join) L=$M ;; esac
    L=$(printf '%s\n' "$L" | sort)
    extra=$(comm -13 <(printf '%s\n' "$DECL_ALL") <(printf '%s\n' "$L") | tr '\n' ' ')
    expect_eq "every key of a $kind's ev is declared in types/handler.lua" "$extra" ""
    want=$DECL_REQ
    [ "$kind" = member-join ] || want=$(printf '%s\n' "$want" | grep -v '^member ')
    missing=$(comm -23 <(printf '%s\n' "$want") <(printf '%s\n' "$L") | tr '\n' ' ')
    expect_eq "every required field of types/handler.lua is in a $kind's ev" "$missing" ""
done
check "user and query events carry ev.name (declared optional)" \
    sh -c "printf '%s\n' '$Q' | grep -qx 'ev name' && printf '%s\n' '$U' | grep -qx 'ev name'"

# --- the sandbox's globals against share/luacheckrc's std ------------------
# The std as luacheck sees it: "G name" per global, "F lib field" per field.
cat > "$T_TMP/std.lua" <<'LUA'
local env = setmetatable({}, { __index = _G })
assert(loadfile(arg[1], "t", env))()
for name, def in pairs(env.stds.serfhand.read_globals) do
  if type(name) == "number" then print("G " .. def) else
    print("G " .. name)
    for f in pairs(def.fields) do print("F " .. name .. " " .. f) end
  end
end
LUA
"$LUA" "$T_TMP/std.lua" "$TOP/share/luacheckrc" | sort > "$T_TMP/std"
# Every global Lua 5.4 has (lua.c's full set); the sandbox must have exactly
# those of the std, and each library table exactly the std's fields.
ALL54="_G _VERSION assert collectgarbage coroutine debug dofile error getmetatable io ipairs load
loadfile math next os package pairs pcall print rawequal rawget rawlen rawset require select
setmetatable string table tonumber tostring type utf8 warn xpcall"
{
    echo 'local all = {}'
    for g in $ALL54; do echo "all[#all + 1] = \"$g\""; done
    cat <<'LUA'
for _, g in ipairs(all) do
  local v = _ENV[g]
  if v ~= nil then T.report("G " .. g) end
  if type(v) == "table" and g ~= "_G" then
    for f in pairs(v) do T.report("F " .. g .. " " .. f) end
  end
end
LUA
} > "$T_TMP/globals.lua"
"$SERFHAND" -c "$T_TMP/conf" test --bundle "$T_TMP/empty" "$T_TMP/globals.lua" 2>&1 |
    grep -E '^[GF] ' | grep -vx 'G T' | sort > "$T_TMP/sandbox"
# collectgarbage is in the sandbox but left out of the std on purpose: only
# collectgarbage("count") works there, so luacheck flags every call.
check "the sandbox has collectgarbage" grep -qx 'G collectgarbage' "$T_TMP/sandbox"
grep -vx 'G collectgarbage' "$T_TMP/sandbox" > "$T_TMP/sandbox.std"
check "the sandbox listed its globals" grep -qx 'F string format' "$T_TMP/sandbox"
D=$(diff "$T_TMP/std" "$T_TMP/sandbox.std")
expect_eq "share/luacheckrc allows exactly the sandbox's globals and library fields (< std only, > sandbox only)" "$D" ""
finish
