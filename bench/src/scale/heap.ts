/**
 * Where a quiet connection's heap goes (`node --expose-gc heap.ts <ws|sse> <raw|ours> <n>`): two heap snapshots,
 * before and after `n` idle connections, and the difference per connection by kind of object (V8's node type and
 * constructor name), largest first. The tool behind the scale suite's numbers, for finding what to share.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as V8 from "node:v8"
import { Effect, Scope } from "effect"
import { gc, sleep } from "./measure.ts"
import { openConnection, startServers } from "./servers.ts"

const [kind, mode, count] = process.argv.slice(2) as ["ws" | "sse", "raw" | "ours", string]
const n = Number(count ?? 500)

/**
 * Writes a heap snapshot. Both are written before either is read: what reading one leaves on the heap (its census)
 * must not be counted in the other.
 */
const snapshotFile = (label: string): string =>
  V8.writeHeapSnapshot(Path.join(Os.tmpdir(), `streamemit-heap-${process.pid}-${label}.heapsnapshot`))

/** Self size and count per `type:name` of a snapshot. */
const census = (file: string): Map<string, { size: number; count: number }> => {
  const snapshot = JSON.parse(Fs.readFileSync(file, "utf8"))
  Fs.rmSync(file)
  const meta = snapshot.snapshot.meta
  const fields: Array<string> = meta.node_fields
  const types: Array<string> = meta.node_types[0]
  const width = fields.length
  const typeAt = fields.indexOf("type")
  const nameAt = fields.indexOf("name")
  const sizeAt = fields.indexOf("self_size")
  const nodes: Array<number> = snapshot.nodes
  const strings: Array<string> = snapshot.strings
  const totals = new Map<string, { size: number; count: number }>()
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]!]!
    const name =
      type === "string" || type === "concatenated string" || type === "number" ? "" : strings[nodes[i + nameAt]!]!
    const key = `${type}:${name.slice(0, 60)}`
    const entry = totals.get(key) ?? { size: 0, count: 0 }
    entry.size += nodes[i + sizeAt]!
    entry.count++
    totals.set(key, entry)
  }
  return totals
}

const urls = await startServers()
const server = urls.process

// One connection first, so that what every connection shares (modules, metrics) is in the baseline.
const scope = Effect.runSync(Scope.make())
let connected = 0
const open = () =>
  openConnection(
    kind,
    mode,
    urls,
    scope,
    () => connected++,
    process.env.BENCH_HEAP_NO_HEARTBEAT === "1" ? { heartbeat: false } : {}
  )
await open()
while (connected < 1) await sleep(20)
await sleep(300)
gc()
const beforeFile = snapshotFile("before")
for (let i = 0; i < n; i++) await open()
while (connected < n + 1) await sleep(50)
await sleep(500)
gc()
const afterFile = snapshotFile("after")
const before = census(beforeFile)
const after = census(afterFile)
const rows: Array<{ key: string; bytes: number; objects: number }> = []
for (const [key, entry] of after) {
  const was = before.get(key) ?? { size: 0, count: 0 }
  const bytes = (entry.size - was.size) / n
  // Compiled code and feedback grow as functions warm up, whatever the number of connections: left out.
  if (key.startsWith("code:")) continue
  if (Math.abs(bytes) >= 8) rows.push({ key, bytes, objects: (entry.count - was.count) / n })
}
rows.sort((a, b) => b.bytes - a.bytes)
const total = rows.reduce((sum, row) => sum + row.bytes, 0)
console.log(
  `${kind} ${mode}: ${(total / 1024).toFixed(1)} KB per connection (rows of 8 B or more, compiled code left out)`
)
for (const row of rows.slice(0, Number(process.env.BENCH_HEAP_ROWS ?? 40))) {
  console.log(`${row.bytes.toFixed(0).padStart(7)} B ${row.objects.toFixed(1).padStart(6)}×  ${row.key}`)
}
server.kill("SIGKILL")
process.exit(0)
