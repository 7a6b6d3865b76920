---@meta serfhand.proc
-- LuaLS annotations for require "serfhand.proc" (see docs/lua-api.md).
-- Misuse raises; failures to start a command return nil, "proc: ...".

---@class serfhand.proc
local proc = {}

---Options of proc.run.
---@class serfhand.proc.RunOpts
---@field timeout_ms? integer ms; 0/nil = none of its own; always bounded by the handler's deadline
---@field stdin? string bytes for the child's stdin (default /dev/null)
---@field env? table<integer|string, string> the whole environment: "K=V" strings and/or K = "V" (default: the variables config proc.env names; LD_* and the like raise)
---@field max_output? integer cap per stream in bytes, 1..64 MiB, default 1 MiB; exceeding it cuts and kills
---@field cwd? string directory to run in
---@field delay_ms? integer fork now, exec this much later (0..86400000; before the handler's deadline); timeout_ms counts from the exec

---What proc.run returns.
---@class serfhand.proc.Result
---@field status integer|nil exit code if the command exited
---@field signal integer|nil signal number that ended it
---@field stdout string
---@field stderr string
---@field timed_out boolean the timeout or the handler's deadline was reached (group killed)
---@field truncated boolean a stream passed max_output (group killed)
---@field started_ms integer wall-clock unix ms just before the child's exec

---Options of proc.spawn.
---@class serfhand.proc.SpawnOpts
---@field log? string append stdout and stderr to this file (default /dev/null); only reboot.log or an entry of proc.logs
---@field env? table<integer|string, string> the whole environment (default: the variables config proc.env names; LD_* and the like raise)
---@field cwd? string directory to run in
---@field delay_ms? integer exec this much later (0..86400000); the pid is returned at once

---Run argv (no shell) and wait for it, with a timeout and an output cap.
---@param argv string[] program (an absolute path in proc.allow, or a bare name found in the host's fixed path and allowed) and arguments
---@param opts? serfhand.proc.RunOpts
---@return serfhand.proc.Result|nil result
---@return string? err "proc: '/usr/bin/x' is not allowed (add its absolute path to proc.allow)", "proc: cannot run ...", ...
function proc.run(argv, opts) end

---Start argv fully detached (fork, setsid, stdio on /dev/null or log,
---other fds closed, reduced environment); returns the detached process's pid.
---@param argv string[]
---@param opts? serfhand.proc.SpawnOpts
---@return integer|nil pid
---@return string? err
function proc.spawn(argv, opts) end

---Send a signal (number, or name such as "TERM", "KILL", "HUP", "INT", "USR1"; default TERM).
---@param pid integer positive
---@param sig? integer|"HUP"|"INT"|"QUIT"|"KILL"|"USR1"|"USR2"|"TERM"|"CONT"|"STOP"
---@return true|nil ok
---@return string? err "proc: kill PID: No such process"
function proc.kill(pid, sig) end

---Whether a process with this pid exists and is not a zombie; reaps an ended child that spawn started.
---@param pid integer positive
---@return boolean
function proc.alive(pid) end

return proc
