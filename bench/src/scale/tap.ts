/**
 * The scale suite's tap row (`node tap.ts <sources> <seconds>`): the tap CLI with `sources` WebSocket sources, each
 * sent a message a second, for `seconds`, NDJSON on stdout. Prints when the last source connected and when the tap
 * exited (from its launch, Node's start-up included), the lines written, the exit code and its maximum RSS
 * (`/usr/bin/time`).
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { startServers } from "./servers.ts"

const [count, duration] = process.argv.slice(2)
const sources = Number(count ?? 1000)
const seconds = Number(duration ?? 8)
const { process: server, wsUrl } = await startServers()
const bin = fileURLToPath(new URL("../../../apps/tap/src/bin.ts", import.meta.url))
const urls = Array.from({ length: sources }, () => `${wsUrl}?every=1000`)
const started = performance.now()
const tap = spawn(
  "/usr/bin/time",
  ["-f", "maxrss=%M", process.execPath, bin, "--json", "--duration", `${seconds}s`, ...urls],
  { stdio: ["ignore", "pipe", "pipe"] }
)
let lines = 0
let connected = 0
let allConnectedMs: number | undefined
let maxRssKb = 0
tap.stdout.on("data", (chunk: Buffer) => {
  for (const byte of chunk) if (byte === 10) lines++
})
let pending = ""
tap.stderr.on("data", (chunk: Buffer) => {
  pending += chunk.toString()
  const parts = pending.split("\n")
  pending = parts.pop()!
  for (const line of parts) {
    if (line.includes(" connected attempt=1") && ++connected === sources) allConnectedMs = performance.now() - started
    const rss = /^maxrss=(\d+)/.exec(line)
    if (rss !== null) maxRssKb = Number(rss[1])
  }
})
const code = await new Promise<number>((resolve) => tap.on("exit", (exitCode) => resolve(exitCode ?? -1)))
const exitedMs = performance.now() - started
server.kill("SIGKILL")
console.log(
  JSON.stringify({
    sources,
    connected,
    allConnectedMs: allConnectedMs ?? -1,
    lines,
    code,
    exitedMs,
    maxRssMb: maxRssKb / 1024
  })
)
process.exit(0)
