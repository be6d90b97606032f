-- tests/bench/rawvm.lua: wrk script for the raw create and delete limits of VirtualMachines
-- (tests/bench/bench_cluster.sh). Environment: RAW_MODE create|delete, RAW_TOKEN (bearer),
-- RAW_BODY (file: a VM whose name is @NAME@). Each thread names its VMs raw-<thread>-<n>, so
-- a delete run with the same threads deletes what the create run made, in the same order.
-- RAW_HEADERS=vmpoold adds the headers vmpoold's creates carry (Accept, Accept-Encoding,
-- User-Agent; bench_cluster.sh's BENCH_RAW_VARIANTS).
-- Prints one line: "raw MODE ok N other M seconds S" (ok: 201 for creates, 200 for deletes).
local threads = {}

function setup(thread)
	thread:set("id", #threads)
	table.insert(threads, thread)
end

function init(args)
	ok, other, counter = 0, 0, 0
	mode = os.getenv("RAW_MODE")
	auth = "Bearer " .. os.getenv("RAW_TOKEN")
	local f = assert(io.open(os.getenv("RAW_BODY")))
	body = f:read("*a")
	f:close()
	headers = { ["Authorization"] = auth, ["Content-Type"] = "application/json" }
	if os.getenv("RAW_HEADERS") == "vmpoold" then
		headers["Accept"] = "application/json"
		headers["Accept-Encoding"] = "deflate, gzip, br, zstd"
		headers["User-Agent"] = "vmpoold/0.1.0 (vmpool-actuator)"
	end
end

function request()
	counter = counter + 1
	local name = "raw-" .. id .. "-" .. counter
	if mode == "create" then
		return wrk.format("POST", wrk.path, headers, (body:gsub("@NAME@", name)))
	end
	return wrk.format("DELETE", wrk.path .. "/" .. name, { ["Authorization"] = auth })
end

function response(status, headers, resp)
	if (mode == "create" and status == 201) or (mode == "delete" and status == 200) then
		ok = ok + 1
	else
		other = other + 1
	end
end

function done(summary, latency, requests)
	local n, bad = 0, 0
	for _, t in ipairs(threads) do
		n = n + t:get("ok")
		bad = bad + t:get("other")
	end
	io.write(string.format("raw %s ok %d other %d seconds %.3f\n", os.getenv("RAW_MODE"), n, bad,
		summary.duration / 1e6))
end
