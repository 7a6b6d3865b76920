---@meta serfhand.factomd
-- LuaLS annotations for require "serfhand.factomd" (see docs/lua-api.md).
-- Misuse raises; failures of factomd or the network return nil, err (a table).

---@class serfhand.factomd
local factomd = {}

---Per-call options.
---@class serfhand.factomd.Opts
---@field timeout_ms? integer 1..600000; default factomd.timeout_ms; always bounded by the handler's deadline

---The error of a failed call; tostring(err) = "factomd: <method>: <kind>[ <code>]: <message>".
---@class serfhand.factomd.Error
---@field kind "http"|"timeout"|"rpc"|"decode"
---@field code integer|nil HTTP status (kind "http") or JSON-RPC code (kind "rpc")
---@field message string
---@field method string
---@field data any|nil JSON-RPC error.data (kind "rpc")

---@class serfhand.factomd.CurrentMinute
---@field leaderheight integer block being built
---@field directoryblockheight integer highest saved block
---@field minute integer 0-9 (10 during end of minute)
---@field currenttime integer Unix ns, exact
---@field currentminutestarttime integer Unix ns, exact; 0 before the first block since factomd started
---@field currentblockstarttime integer Unix ns, exact; 0 before the first block since factomd started
---@field directoryblockinseconds integer
---@field stalldetected boolean
---@field faulttimeout integer
---@field roundtimeout integer
---@field booting boolean added: a start time is 0 (no block yet since factomd started)
---@field minute_age_ms integer added: (currenttime - currentminutestarttime) // 1e6; 0 while booting
---@field block_age_ms integer added: (currenttime - currentblockstarttime) // 1e6; 0 while booting

---@class serfhand.factomd.Heights
---@field directoryblockheight integer
---@field leaderheight integer
---@field entryblockheight integer
---@field entryheight integer

---@class serfhand.factomd.Properties
---@field factomdversion string
---@field factomdapiversion string

---@class serfhand.factomd.Diagnostics
---@field name string
---@field id? string own identity chain id (hex)
---@field publickey? string own block-signing public key (hex)
---@field role "Leader"|"Audit"|"Follower"
---@field leaderheight integer
---@field currentminute integer
---@field currentminuteduration integer ns
---@field previousminuteduration integer ns
---@field balancehash string
---@field tempbalancehash string
---@field lastblockfromdbstate boolean
---@field syncing {status: string, received?: integer, expected?: integer, missing?: string[]}
---@field authset {leaders: {id: string, vm: integer, listheight: integer, listlength: integer, nextnil: integer}[], audits: {id: string, online: boolean}[]}
---@field elections {inprogress: boolean, vmindex?: integer, fedindex?: integer, fedid?: string, round?: integer}

---@class serfhand.factomd.Authority
---@field chainid string identity chain id (64 hex, 888888...)
---@field manageid string
---@field matroyshka string
---@field signingkey string Ed25519 public key, 64 hex
---@field status string "federated"|"audit"|"none"|"skeleton"|"NA"
---@field anchorkeys table[]
---@field efficiency integer 0..10000
---@field coinbaseaddress string

---@class serfhand.factomd.DBlock
---@field dbhash string
---@field keymr string
---@field headerhash string
---@field header {version: integer, networkid: integer, bodymr: string, prevkeymr: string, prevfullhash: string, timestamp: integer, dbheight: integer, blockcount: integer, chainid: string} timestamp in minutes (block start)
---@field dbentries {chainid: string, keymr: string}[]

---Call any v2 method (debug methods that leak keys or change the node raise).
---@param method string [a-z0-9-]{1,64}
---@param params? table JSON object or array
---@param opts? serfhand.factomd.Opts
---@return any|nil result
---@return serfhand.factomd.Error? err
function factomd.call(method, params, opts) end

---current-minute with exact ns times and booting, minute_age_ms, block_age_ms.
---@param opts? serfhand.factomd.Opts
---@return serfhand.factomd.CurrentMinute|nil
---@return serfhand.factomd.Error? err
function factomd.current_minute(opts) end

---@param opts? serfhand.factomd.Opts
---@return serfhand.factomd.Heights|nil
---@return serfhand.factomd.Error? err
function factomd.heights(opts) end

---@param opts? serfhand.factomd.Opts
---@return serfhand.factomd.Properties|nil
---@return serfhand.factomd.Error? err
function factomd.properties(opts) end

---@param opts? serfhand.factomd.Opts
---@return serfhand.factomd.Diagnostics|nil
---@return serfhand.factomd.Error? err
function factomd.diagnostics(opts) end

---The authority set (result.authorities; {} for null).
---@param opts? serfhand.factomd.Opts
---@return serfhand.factomd.Authority[]|nil
---@return serfhand.factomd.Error? err
function factomd.authorities(opts) end

---The directory block at height (result.dblock, no raw data).
---@param height integer 0..2^32-1
---@param opts? serfhand.factomd.Opts
---@return serfhand.factomd.DBlock|nil
---@return serfhand.factomd.Error? err
function factomd.dblock_by_height(height, opts) end

return factomd
