-- tests/lua/proc.lua: serfhand.proc — run (exit codes, stdin, no shell,
-- missing command, timeout, output flood, env), spawn/alive/kill, misuse.
-- Run: build/serfhand test tests/lua/proc.lua
local proc = require "serfhand.proc"
local time = require "serfhand.time"
local config = require "serfhand.config"

-- proc.env's default: no credentials (SERF_RPC_AUTH is never passed on).
local ALLOWED = {
    PATH = true, HOME = true, LANG = true, LC_ALL = true, TZ = true, SERF_RPC_ADDR = true,
}

-- Seconds taken by fn(), and its results.
local function timed(fn)
    local t0 = time.mono()
    local r, e = fn()
    return time.mono() - t0, r, e
end

-- Wait up to secs for pred() to be true.
local function wait_until(secs, pred)
    local stop = time.mono() + secs
    while time.mono() < stop do
        if pred() then return true end
        time.sleep(20)
    end
    return pred()
end

local function sh(script, opts)
    return proc.run({ "sh", "-c", script }, opts)
end

local function tmpdir()
    local r = assert(proc.run { "mktemp", "-d" })
    return (r.stdout:gsub("\n$", ""))
end

-- spawnlog(name) -> a log file proc.spawn may append to (tests/run's
-- proc.logs lists it), emptied first
local function spawnlog(name)
    local path = config.get("state_dir") .. "/spawn-" .. name .. ".log"
    assert(sh("mkdir -p " .. config.get("state_dir")))
    assert(proc.run { "rm", "-f", path })
    return path
end

local function cat(path)
    local r = proc.run { "cat", path }
    return r and r.status == 0 and r.stdout or nil
end

-- run: exit codes and streams -------------------------------------------

local basic = {
    { name = "true", argv = { "true" }, status = 0, stdout = "", stderr = "" },
    { name = "false", argv = { "false" }, status = 1, stdout = "", stderr = "" },
    { name = "echo args", argv = { "echo", "a b", "c" }, status = 0, stdout = "a b c\n", stderr = "" },
    { name = "no shell expansion", argv = { "echo", "$HOME;", "*", "`id`" }, status = 0,
      stdout = "$HOME; * `id`\n", stderr = "" },
    { name = "exit code 3 and stderr", argv = { "sh", "-c", "echo out; echo err >&2; exit 3" },
      status = 3, stdout = "out\n", stderr = "err\n" },
    { name = "exit code 255", argv = { "sh", "-c", "exit 255" }, status = 255, stdout = "", stderr = "" },
    { name = "stdin nil is /dev/null", argv = { "cat" }, status = 0, stdout = "", stderr = "" },
    { name = "empty stdin", argv = { "cat" }, opts = { stdin = "" }, status = 0, stdout = "", stderr = "" },
    { name = "cat stdin", argv = { "cat" }, opts = { stdin = "hello\n" }, status = 0,
      stdout = "hello\n", stderr = "" },
    { name = "binary stdin", argv = { "cat" }, opts = { stdin = "a\0b\255\n\0" }, status = 0,
      stdout = "a\0b\255\n\0", stderr = "" },
    { name = "cwd", argv = { "pwd" }, opts = { cwd = "/" }, status = 0, stdout = "/\n", stderr = "" },
    { name = "max_output cuts a stream", argv = { "echo", "0123456789abc" }, opts = { max_output = 10 },
      stdout = "0123456789", stderr = "", truncated = true },
}

for _, c in ipairs(basic) do
    T.test("run: " .. c.name, function()
        local r, err = proc.run(c.argv, c.opts)
        T.ok(r, err)
        if c.status ~= nil then T.eq(r.status, c.status, "status") end
        T.eq(r.stdout, c.stdout, "stdout")
        T.eq(r.stderr, c.stderr, "stderr")
        T.eq(r.timed_out, false, "timed_out")
        T.eq(r.truncated, c.truncated or false, "truncated")
        if c.status ~= nil then T.eq(r.signal, nil, "signal") end
    end)
end

T.test("run: killed by a signal", function()
    local r = assert(sh("kill -USR1 $$"))
    T.eq(r.status, nil)
    T.eq(r.signal, 10)
end)

T.test("run: large stdin through cat (no deadlock)", function()
    local big = string.rep("0123456789abcdef", 65536) -- 1 MiB
    local r = assert(proc.run({ "cat" }, { stdin = big, max_output = 2 * #big }))
    T.eq(r.status, 0)
    T.eq(#r.stdout, #big)
    T.ok(r.stdout == big, "same bytes back")
end)

T.test("run: stdin to a child that does not read (no SIGPIPE)", function()
    local r = assert(proc.run({ "true" }, { stdin = string.rep("x", 4 << 20) }))
    T.eq(r.status, 0)
    r = assert(proc.run({ "head", "-c", "3" }, { stdin = string.rep("y", 4 << 20) }))
    T.eq(r.status, 0)
    T.eq(r.stdout, "yyy")
end)

-- run: failures of the world ---------------------------------------------

local failures = {
    { name = "missing command", argv = { "no-such-command-serfhand" },
      err = "^proc: 'no%-such%-command%-serfhand' is not in /usr/local/sbin:" },
    { name = "missing path", argv = { "/nonexistent/x" },
      err = "^proc: cannot run '/nonexistent/x': No such file or directory$" },
    { name = "not executable", argv = { "/etc/passwd" },
      err = "^proc: cannot run '/etc/passwd': Permission denied$" },
    { name = "bad cwd", argv = { "true" }, opts = { cwd = "/nonexistent" },
      err = "^proc: cannot change to directory '/nonexistent': No such file or directory$" },
    { name = "not in proc.allow", argv = { "/usr/bin/id" }, err = "^proc: '/usr/bin/id' is not allowed" },
    { name = "a bare name resolves to a path not in proc.allow", argv = { "id" },
      err = "^proc: '/usr/bin/id' is not allowed" },
    { name = "relative path", argv = { "./true" }, err = "^proc: '%./true' is not allowed" },
    { name = "serfhand itself, other than as action", argv = { "/proc/self/exe", "run" },
      err = "is not allowed" },
}

T.test("run: the child's PATH does not choose the executable", function()
    -- resolved through the host's fixed path, never the caller's PATH
    local r = assert(proc.run({ "true" }, { env = { PATH = "/nonexistent" } }))
    T.eq(r.status, 0)
end)

for _, c in ipairs(failures) do
    T.test("run fails: " .. c.name, function()
        local r, err = proc.run(c.argv, c.opts)
        T.eq(r, nil)
        T.ok(type(err) == "string" and err:find(c.err), "error: " .. tostring(err))
    end)
end

-- run: timeouts and floods -----------------------------------------------

T.test("run: timeout kills sleep 5 quickly", function()
    local secs, r = timed(function() return proc.run({ "sleep", "5" }, { timeout_ms = 200 }) end)
    T.ok(r, "result")
    T.eq(r.timed_out, true, "timed_out")
    T.eq(r.status, nil, "status")
    T.eq(r.signal, 15, "signal")
    T.ok(secs >= 0.19 and secs < 1.5, "took " .. secs .. " s")
end)

T.test("run: SIGTERM ignored, SIGKILL follows", function()
    local secs, r = timed(function()
        return sh("trap '' TERM; sleep 5; echo late", { timeout_ms = 200 })
    end)
    T.eq(r.timed_out, true)
    T.eq(r.signal, 9)
    T.eq(r.stdout, "")
    T.ok(secs < 1.5, "took " .. secs .. " s")
end)

T.test("run: background child holding stdout is cut at the timeout", function()
    local secs, r = timed(function() return sh("sleep 5 & echo hi", { timeout_ms = 300 }) end)
    T.eq(r.stdout, "hi\n")
    T.eq(r.status, 0)
    T.eq(r.timed_out, true)
    T.ok(secs < 1.5, "took " .. secs .. " s")
end)

T.test("run: fast command is not slowed by a timeout", function()
    local secs, r = timed(function() return proc.run({ "true" }, { timeout_ms = 5000 }) end)
    T.eq(r.status, 0)
    T.eq(r.timed_out, false)
    T.ok(secs < 0.5, "took " .. secs .. " s")
end)

T.test("run: started_ms is the wall-clock time of the exec", function()
    local t0 = time.now_ms()
    local r = assert(proc.run { "true" })
    local t1 = time.now_ms()
    T.eq(math.type(r.started_ms), "integer")
    T.ok(r.started_ms >= t0 and r.started_ms <= t1, string.format("%d in [%d, %d]", r.started_ms, t0, t1))
end)

T.test("run with delay_ms: forked at the call, exec'd that much later; timeout_ms counts from the exec", function()
    local t0 = time.now_ms()
    -- the command prints its own start (ms); the timeout would have passed
    -- before the exec if it counted from the call
    local r = assert(sh("date +%s%3N", { delay_ms = 400, timeout_ms = 300 }))
    T.eq(r.status, 0, r.stderr)
    T.eq(r.timed_out, false, "timed out")
    local own = tonumber(r.stdout)
    T.ok(r.started_ms - t0 >= 400, string.format("exec'd %d ms after the call", r.started_ms - t0))
    T.ok(r.started_ms - t0 < 400 + 1000, string.format("exec'd %d ms after the call", r.started_ms - t0))
    T.ok(own and own >= r.started_ms and own - r.started_ms < 1000,
        string.format("the command started at %s, the exec at %d", tostring(own), r.started_ms))
end)

T.test("run with delay_ms: an exec that fails after the wait is an error, not a status", function()
    -- a path proc.allow lists (tests/run's config), removed during the wait
    local script = config.get("state_dir") .. "/gone.sh"
    assert(sh("mkdir -p " .. config.get("state_dir")))
    assert(sh("printf '#!/bin/sh\\necho ran\\n' > " .. script .. " && chmod 755 " .. script))
    assert(proc.spawn({ "sh", "-c", "sleep 0.1; rm -f " .. script }))
    local r, err = proc.run({ script }, { delay_ms = 600 })
    T.eq(r, nil, "no result")
    T.eq(err, "proc: cannot run '" .. script .. "': No such file or directory")
end)

T.test("run with delay_ms: a delay past the handler's deadline is refused, nothing starts", function()
    local secs, r, err = timed(function()
        return proc.run({ "sh", "-c", "echo started" }, { delay_ms = 86400000 })
    end)
    T.eq(r, nil)
    T.ok(err and err:find("^proc: delay_ms 86400000 reaches past the handler's deadline"), err)
    T.ok(secs < 0.3, "refused after " .. secs .. " s")
end)

T.test("run: stdout flood (yes) is truncated and killed fast", function()
    local secs, r = timed(function() return proc.run { "yes" } end)
    T.ok(r, "result")
    T.eq(r.truncated, true)
    T.eq(#r.stdout, 1 << 20)
    T.eq(r.stdout:sub(1, 4), "y\ny\n")
    T.eq(r.status, nil)
    T.ok(r.signal == 15 or r.signal == 9, "signal " .. tostring(r.signal))
    T.eq(r.timed_out, false)
    T.ok(secs < 2, "took " .. secs .. " s")
end)

T.test("run: stderr flood with a small cap", function()
    local secs, r = timed(function() return sh("yes err >&2", { max_output = 1000 }) end)
    T.eq(r.truncated, true)
    T.eq(#r.stderr, 1000)
    T.eq(r.stdout, "")
    T.ok(secs < 2, "took " .. secs .. " s")
end)

T.test("run: output the memory cap cannot hold raises, naming limits.memory_mb", function()
    -- max_output allows 64 MiB a stream; the cap (64 MiB, shared with the
    -- Lua heap and the strings copied from the output) does not
    local before = collectgarbage("count")
    local secs, ok, err = timed(function()
        return pcall(proc.run, { "yes" }, { max_output = 64 * 1024 * 1024 })
    end)
    T.eq(ok, false)
    T.ok(tostring(err):find("proc.run: the command's output: not enough memory (limits.memory_mb = ", 1, true),
        tostring(err))
    T.ok(secs < 2, "took " .. secs .. " s")
    T.ok(collectgarbage("count") - before < 1024, "the buffers are freed and uncounted")
    local r = assert(proc.run({ "yes" }, { max_output = 4 * 1024 * 1024 }))
    T.eq(#r.stdout, 4 * 1024 * 1024) -- what fits still comes back
    T.eq(r.truncated, true)
end)

-- run: environment --------------------------------------------------------

T.test("run: env replaces the environment", function()
    local r = assert(proc.run({ "/usr/bin/env" }, { env = { "A=1", B = "two words", "C=x=y" } }))
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    table.sort(lines)
    T.eq(table.concat(lines, ","), "A=1,B=two words,C=x=y")
end)

T.test("run: empty env", function()
    local r = assert(proc.run({ "/usr/bin/env" }, { env = {} }))
    T.eq(r.stdout, "")
end)

T.test("run: default env is the allow-list", function()
    local r = assert(proc.run { "env" })
    T.eq(r.status, 0)
    for line in r.stdout:gmatch("[^\n]+") do
        local k = line:match("^([^=]+)=")
        T.ok(ALLOWED[k], "unexpected variable " .. tostring(k))
    end
end)

-- spawn, alive, kill ------------------------------------------------------

T.test("spawn: detached sleep, alive, kill", function()
    local pid, err = proc.spawn { "sleep", "5" }
    T.ok(pid, err)
    T.eq(math.type(pid), "integer")
    T.eq(proc.alive(pid), true, "alive after spawn")
    T.eq(proc.kill(pid, 0), true, "signal 0 probes")
    T.eq(proc.kill(pid, "TERM"), true)
    T.ok(wait_until(2, function() return not proc.alive(pid) end), "gone after TERM")
    -- our child until we exit: alive() reaped it, no zombie is left
    T.eq(sh("test -e /proc/" .. pid .. " && echo left || echo reaped").stdout, "reaped\n")
    local ok, kerr = proc.kill(pid, "KILL")
    T.eq(ok, nil)
    T.ok(kerr:find("^proc: kill %d+: No such process$"), kerr)
end)

-- Field n (1-based) of /proc/PID/stat, after the command name.
local function stat_field(pid, n)
    local s = cat("/proc/" .. pid .. "/stat")
    local rest = s:match("%) (.*)$")
    local f = {}
    for w in rest:gmatch("%S+") do f[#f + 1] = w end
    return tonumber(f[n - 2]) or f[n - 2]
end

T.test("spawn: returns at once and is fully detached", function()
    local dir = tmpdir()
    local log = spawnlog("out")
    local secs, pid = timed(function()
        return proc.spawn({ "sh", "-c", "echo start; echo err >&2; umask; exec sleep 5" }, { log = log })
    end)
    T.ok(pid, "pid")
    T.ok(secs < 0.5, "spawn took " .. secs .. " s")
    T.ok(wait_until(3, function() return cat(log) == "start\nerr\n0022\n" end),
        "stdout, stderr appended to the log; umask 022: " .. tostring(cat(log)))
    -- now the process is `sleep 5` (same pid): inspect it from outside
    local fds = assert(proc.run { "ls", "/proc/" .. pid .. "/fd" }).stdout
    local list = {}
    for fd in fds:gmatch("%d+") do list[#list + 1] = tonumber(fd) end
    table.sort(list)
    T.eq(table.concat(list, " "), "0 1 2", "only stdio open")
    local links = assert(proc.run { "readlink", "/proc/" .. pid .. "/fd/0", "/proc/" .. pid .. "/fd/1",
        "/proc/" .. pid .. "/fd/2" }).stdout
    T.eq(links, "/dev/null\n" .. log .. "\n" .. log .. "\n", "stdio targets")
    local sid, pgrp, ppid = stat_field(pid, 6), stat_field(pid, 5), stat_field(pid, 4)
    T.eq(sid, pid, "leader of a session of its own (one fork, then setsid)")
    local my_sid = tonumber(assert(sh("cut -d' ' -f6 /proc/$PPID/stat")).stdout)
    T.ok(sid ~= my_sid, "own session (" .. sid .. " vs " .. my_sid .. ")")
    T.eq(pgrp, sid, "group of the new session")
    T.eq(stat_field(pid, 7), 0, "no controlling terminal")
    local my_pid = tonumber(assert(sh("echo $PPID")).stdout)
    T.eq(ppid, my_pid, "our child until we exit (then init's)")
    local env = assert(proc.run { "sh", "-c", "tr '\\0' '\\n' < /proc/" .. pid .. "/environ" }).stdout
    for k in env:gmatch("([^=\n]+)=[^\n]*") do
        T.ok(ALLOWED[k] or k == "PWD", "unexpected variable " .. k) -- sh exports PWD
    end
    T.eq(proc.kill(pid, "KILL"), true)
    T.ok(wait_until(2, function() return not proc.alive(pid) end), "killed")
    proc.run { "rm", "-rf", dir }
end)

T.test("spawn: log is appended, env and cwd apply", function()
    local dir = tmpdir()
    local log = spawnlog("x")
    local p1 = assert(proc.spawn({ "sh", "-c", "echo one" }, { log = log }))
    T.ok(wait_until(2, function() return cat(log) == "one\n" end), "first line")
    local p2 = assert(proc.spawn({ "sh", "-c", "echo $X; pwd" },
        { log = log, env = { X = "two", "PATH=/usr/bin:/bin" }, cwd = dir }))
    T.ok(wait_until(2, function() return cat(log) == "one\ntwo\n" .. dir .. "\n" end),
        "appended: " .. tostring(cat(log)))
    T.ok(p1 ~= p2)
    proc.run { "rm", "-rf", dir }
end)

-- Our zombie children (ps --ppid of the sh's parent: this process).
local function zombies()
    return select(2, sh("ps -o stat= --ppid $PPID").stdout:gsub("Z", ""))
end

T.test("spawn fails: missing command, bad log, bad cwd", function()
    local z0 = zombies()
    local pid, err = proc.spawn { "no-such-command-serfhand" }
    T.eq(pid, nil)
    T.ok(err:find("^proc: 'no%-such%-command%-serfhand' is not in /usr/local/sbin:"), err)
    pid, err = proc.spawn { "/usr/bin/id" }
    T.eq(pid, nil)
    T.ok(err:find("^proc: '/usr/bin/id' is not allowed"), err)
    pid, err = proc.spawn({ "true" }, { log = "/nonexistent/dir/x.log" }) -- listed in proc.logs
    T.eq(pid, nil)
    T.eq(err, "proc: cannot open log '/nonexistent/dir/x.log': No such file or directory")
    pid, err = proc.spawn({ "true" }, { cwd = "/nonexistent" })
    T.eq(pid, nil)
    T.eq(err, "proc: cannot change to directory '/nonexistent': No such file or directory")
    T.eq(zombies(), z0, "the children that failed were reaped")
end)

T.test("spawn: the log is only a file the operator listed (proc.logs, reboot.log)", function()
    local z0 = zombies()
    local dir = tmpdir()
    for _, path in ipairs({ dir .. "/mine.log", "/etc/passwd", config.get("state_dir") .. "/serfhand.db",
        config.get("state_dir") .. "/spawn-x.log/", config.get("state_dir") .. "/../state/spawn-x.log" }) do
        local pid, err = proc.spawn({ "sh", "-c", "echo appended" }, { log = path })
        T.eq(pid, nil, path)
        T.eq(err, "proc: log file '" .. path .. "' is not allowed (add its absolute path to proc.logs)")
    end
    T.eq(cat(dir .. "/mine.log"), nil, "not created")
    T.eq(zombies(), z0, "nothing was started")
    proc.run { "rm", "-rf", dir }
end)

T.test("spawn with delay_ms: returns at once, the command runs that much later", function()
    local dir = tmpdir()
    local log = spawnlog("d")
    local t0 = time.mono()
    local secs, pid = timed(function()
        return proc.spawn({ "sh", "-c", "echo ran" }, { log = log, delay_ms = 600 })
    end)
    T.ok(pid, "pid")
    T.ok(secs < 0.3, "spawn took " .. secs .. " s")
    T.eq(proc.alive(pid), true, "waiting, detached, under its final pid")
    T.eq(cat(log), "", "nothing ran yet")
    T.ok(wait_until(3, function() return cat(log) == "ran\n" end), "ran: " .. tostring(cat(log)))
    local after = time.mono() - t0
    T.ok(after >= 0.6, "ran after " .. after .. " s, not before 0.6 s")
    -- a waiting child is killed like any other
    pid = assert(proc.spawn({ "sh", "-c", "echo late" }, { log = log, delay_ms = 60000 }))
    T.eq(proc.kill(pid, "TERM"), true)
    T.ok(wait_until(2, function() return not proc.alive(pid) end), "gone after TERM")
    T.eq(cat(log), "ran\n", "the killed one never ran")
    proc.run { "rm", "-rf", dir }
end)

T.test("spawn with delay_ms: an exec that fails after the wait says so in the log", function()
    local dir = tmpdir()
    -- a path proc.allow lists (tests/run's config)
    local script, log = config.get("state_dir") .. "/gone.sh", spawnlog("g")
    assert(sh("mkdir -p " .. config.get("state_dir")))
    assert(sh("printf '#!/bin/sh\\necho ran\\n' > " .. script .. " && chmod 755 " .. script))
    local pid = assert(proc.spawn({ script }, { log = log, delay_ms = 300 }))
    assert(proc.run { "rm", script })
    T.ok(wait_until(3, function() return not proc.alive(pid) end), "the child ended")
    T.eq(cat(log), "serfhand proc.spawn: cannot run '" .. script .. "' after the wait: errno 2\n", "ENOENT")
    proc.run { "rm", "-rf", dir }
end)

T.test("spawn with delay_ms: a command that cannot run fails at once", function()
    local secs, pid, err = timed(function()
        return proc.spawn({ "no-such-command-serfhand" }, { delay_ms = 5000 })
    end)
    T.eq(pid, nil)
    T.ok(err:find("is not in /usr/local/sbin"), err)
    T.ok(secs < 0.3, "failed after " .. secs .. " s")
    local dir = tmpdir()
    local f = config.get("state_dir") .. "/not-executable"
    assert(sh("mkdir -p " .. config.get("state_dir")))
    assert(sh("printf 'echo x' > " .. f .. " && chmod 644 " .. f))
    pid, err = proc.spawn({ f }, { delay_ms = 5000 })
    T.eq(pid, nil)
    T.eq(err, "proc: cannot run '" .. f .. "': Permission denied")
    proc.run { "rm", "-rf", dir, f }
    pid, err = proc.spawn({ "/usr/bin/id" }, { delay_ms = 5000 })
    T.eq(pid, nil, "not in proc.allow")
    T.ok(err and err:find("is not allowed", 1, true), err)
end)

T.test("alive: finished and init", function()
    local r = assert(sh("echo $$"))
    T.eq(proc.alive(tonumber(r.stdout)), false, "reaped child")
    T.eq(proc.alive(1), true, "pid 1")
end)

T.test("kill: signal names and numbers", function()
    local pid = assert(proc.spawn { "sleep", "5" })
    T.eq(proc.kill(pid, "SIGUSR1"), true)
    T.ok(wait_until(2, function() return not proc.alive(pid) end), "USR1 ends sleep")
    pid = assert(proc.spawn { "sleep", "5" })
    T.eq(proc.kill(pid, 9), true)
    T.ok(wait_until(2, function() return not proc.alive(pid) end), "9 ends sleep")
    pid = assert(proc.spawn { "sleep", "5" })
    T.eq(proc.kill(pid), true, "default TERM")
    T.ok(wait_until(2, function() return not proc.alive(pid) end), "TERM ends sleep")
end)

T.test("kill: no such process", function()
    local r = assert(sh("echo $$"))
    local ok, err = proc.kill(tonumber(r.stdout), "HUP")
    T.eq(ok, nil)
    T.ok(err:find("^proc: kill %d+: No such process$"), err)
end)

-- misuse raises -----------------------------------------------------------

local misuse = {
    { "run()", function() proc.run() end, "argv must be a non%-empty array" },
    { "run string", function() proc.run("true") end, "argv must be" },
    { "run {}", function() proc.run {} end, "argv must be" },
    { "run number arg", function() proc.run { "echo", 1 } end, "argv%[2%] is a number" },
    { "run empty cmd", function() proc.run { "" } end, "argv%[1%] is empty" },
    { "run NUL arg", function() proc.run { "echo", "a\0b" } end, "contains NUL" },
    { "run opts string", function() proc.run({ "true" }, "x") end, "table expected" },
    { "run unknown option", function() proc.run({ "true" }, { timeout = 5 }) end,
      "unknown option 'timeout'" },
    { "run timeout string", function() proc.run({ "true" }, { timeout_ms = "5" }) end, "timeout_ms" },
    { "run timeout negative", function() proc.run({ "true" }, { timeout_ms = -1 }) end, "timeout_ms" },
    { "run timeout fraction", function() proc.run({ "true" }, { timeout_ms = 1.5 }) end, "timeout_ms" },
    { "run max_output 0", function() proc.run({ "true" }, { max_output = 0 }) end, "max_output" },
    { "run max_output huge", function() proc.run({ "true" }, { max_output = 1 << 40 }) end, "max_output" },
    { "run stdin number", function() proc.run({ "cat" }, { stdin = 5 }) end, "stdin" },
    { "run env string", function() proc.run({ "true" }, { env = "A=1" }) end, "env" },
    { "run env no =", function() proc.run({ "true" }, { env = { "A" } }) end, "not K=V" },
    { "run env =V", function() proc.run({ "true" }, { env = { "=x" } }) end, "not K=V" },
    { "run env bad name", function() proc.run({ "true" }, { env = { ["A=B"] = "x" } }) end,
      "bad variable name" },
    { "run env value type", function() proc.run({ "true" }, { env = { A = 1 } }) end,
      "values must be strings" },
    { "run env key type", function() proc.run({ "true" }, { env = { [true] = "x" } }) end, "keys must be" },
    { "run env NUL", function() proc.run({ "true" }, { env = { A = "x\0y" } }) end, "NUL" },
    { "run cwd number", function() proc.run({ "true" }, { cwd = 1 }) end, "cwd" },
    { "run delay_ms negative", function() proc.run({ "true" }, { delay_ms = -1 }) end, "delay_ms" },
    { "run delay_ms fraction", function() proc.run({ "true" }, { delay_ms = 0.5 }) end, "delay_ms" },
    { "run delay_ms string", function() proc.run({ "true" }, { delay_ms = "10" }) end, "delay_ms" },
    { "spawn()", function() proc.spawn() end, "argv must be" },
    { "spawn bad arg", function() proc.spawn { "sleep", {} } end, "argv%[2%] is a table" },
    { "spawn unknown option", function() proc.spawn({ "true" }, { timeout_ms = 1 }) end,
      "unknown option 'timeout_ms'" },
    { "spawn log empty", function() proc.spawn({ "true" }, { log = "" }) end, "log" },
    { "spawn log number", function() proc.spawn({ "true" }, { log = 1 }) end, "log" },
    { "spawn delay_ms negative", function() proc.spawn({ "true" }, { delay_ms = -1 }) end, "delay_ms" },
    { "spawn delay_ms over a day", function() proc.spawn({ "true" }, { delay_ms = 86400001 }) end,
      "integer in 0..86400000" },
    { "spawn delay_ms fraction", function() proc.spawn({ "true" }, { delay_ms = 1.5 }) end, "delay_ms" },
    { "kill no pid", function() proc.kill() end, "number expected" },
    { "kill pid 0", function() proc.kill(0) end, "positive" },
    { "kill pid -1", function() proc.kill(-1, "KILL") end, "positive" },
    { "kill pid string", function() proc.kill("x") end, "number expected" },
    { "kill bad name", function() proc.kill(1, "BOGUS") end, "unknown signal" },
    { "kill bad number", function() proc.kill(1, 999) end, "out of range" },
    { "kill bad sig type", function() proc.kill(1, {}) end, "number expected" },
    { "alive no pid", function() proc.alive() end, "number expected" },
    { "alive pid 0", function() proc.alive(0) end, "positive" },
}

for _, c in ipairs(misuse) do
    T.test("raises: " .. c[1], function() T.raises(c[2], c[3]) end)
end
