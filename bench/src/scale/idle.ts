/**
 * One measurement of the scale suite, in a process of its own (`node --expose-gc idle.ts <ws|sse> <raw|ours> <n>`):
 * opens `n` idle connections to the servers (a child process), then prints what they cost after a full GC — heap and RSS
 * per connection — and the CPU the process spends while they sit idle.
 */
import { Effect, Exit, Scope } from "effect"
import { gc, sleep } from "./measure.ts"
import { openConnection, startServers } from "./servers.ts"

const [kind, mode, count] = process.argv.slice(2) as ["ws" | "sse", "raw" | "ours", string]
const n = Number(count)
const idleMs = Number(process.env.BENCH_SCALE_IDLE_MS ?? 5000)

const urls = await startServers()
const server = urls.process

const scope = Effect.runSync(Scope.make())
const raw: Array<{ close: () => void }> = []
let connected = 0
const open = async () => {
  raw.push({ close: await openConnection(kind, mode, urls, scope, () => connected++) })
}

// One connection first, so that what every connection shares (modules, compiled code, metrics) is in the baseline:
// per connection means per connection, at 1,000 as at 10,000.
await open()
while (connected < 1) await sleep(20)
await sleep(200)
gc()
await sleep(100)
const before = process.memoryUsage()
for (let i = 0; i < n; i++) await open()
while (connected < n + 1) await sleep(50)
await sleep(500)
gc()
await sleep(100)
gc()
const after = process.memoryUsage()
// The collections above leave the heap to be swept on V8's helper threads, which process.cpuUsage counts: wait for
// that to finish (it grows with the heap, not with the connections' idleness) before measuring idle CPU.
await sleep(Number(process.env.BENCH_SCALE_SETTLE_MS ?? 2000))
const cpuBefore = process.cpuUsage()
const start = performance.now()
await sleep(idleMs)
const cpu = process.cpuUsage(cpuBefore)
const seconds = (performance.now() - start) / 1000
console.log(
  JSON.stringify({
    heapPerConnection: (after.heapUsed - before.heapUsed) / n,
    rssPerConnection: (after.rss - before.rss) / n,
    idleCpuMsPerSecond: (cpu.user + cpu.system) / 1000 / seconds
  })
)
for (const connection of raw) connection.close()
await Effect.runPromise(Scope.close(scope, Exit.void))
server.kill("SIGKILL")
process.exit(0)
