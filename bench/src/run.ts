/**
 * The benchmark runner: `pnpm bench [suite…]`. Prints a table of ratios and writes the same rows as JSON to
 * bench/results/latest.json.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { printTable, type Row, type Suite } from "./harness.ts"
import { suite as core } from "./suites/core.ts"
import { suite as fsWatcher } from "./suites/fs-watcher.ts"
import { suite as httpStream } from "./suites/http-stream.ts"
import { suite as pgListen } from "./suites/pg-listen.ts"
import { suite as redisPubSub } from "./suites/redis-pubsub.ts"
import { suite as redisStreams } from "./suites/redis-streams.ts"
import { suite as scale } from "./suites/scale.ts"
import { suite as sse } from "./suites/sse.ts"
import { suite as websocket } from "./suites/websocket.ts"

const suites: ReadonlyArray<Suite> = [
  core,
  websocket,
  httpStream,
  sse,
  pgListen,
  redisPubSub,
  redisStreams,
  fsWatcher,
  scale
]

const wanted = process.argv.slice(2)
const unknown = wanted.filter((name) => !suites.some((s) => s.name === name))
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(", ")}; known: ${suites.map((s) => s.name).join(", ")}`)
  process.exit(2)
}

const rows: Array<Row> = []
for (const suite of suites) {
  if (wanted.length > 0 && !wanted.includes(suite.name)) continue
  console.error(`running ${suite.name}…`)
  rows.push(...(await suite.run()))
}

console.log(printTable(rows))
const out = join(dirname(fileURLToPath(import.meta.url)), "..", "results", "latest.json")
mkdirSync(dirname(out), { recursive: true })
writeFileSync(
  out,
  `${JSON.stringify({ at: new Date().toISOString(), node: process.version, cpus: navigator.hardwareConcurrency, rows }, null, 2)}\n`
)
console.error(`wrote ${out}`)
