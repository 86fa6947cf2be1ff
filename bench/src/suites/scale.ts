/**
 * What a quiet source costs when a service holds many: idle WebSocket and SSE connections, 1,000 and 10,000 of
 * them, each measurement in a fresh process (`../scale/idle.ts`, servers in a child process so only the clients'
 * heap, RSS and file descriptors are counted), raw
 * library and connector alternating, the median of the rounds. Targets (the scale issue): heap per connection
 * ≤ 1.5× raw + 4 KB, RSS ≤ 2× raw, idle CPU ≤ 2× raw (heartbeats included on our side).
 */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { Row, Suite } from "../harness.ts"

const ROUNDS = Number(process.env.BENCH_SCALE_ROUNDS ?? 3)
/** Connection counts per kind: 1,000 and 10,000 (the servers run in a process of their own, with their own fds). */
const SIZES = (process.env.BENCH_SCALE_SIZES ?? "1000,10000").split(",").map(Number)
const script = fileURLToPath(new URL("../scale/idle.ts", import.meta.url))

interface Cost {
  readonly heapPerConnection: number
  readonly rssPerConnection: number
  readonly idleCpuMsPerSecond: number
}

const measure = (kind: "ws" | "sse", mode: "raw" | "ours", connections: number): Cost =>
  JSON.parse(
    execFileSync(process.execPath, ["--expose-gc", script, kind, mode, String(connections)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      timeout: 120_000
    }).trim()
  )

const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** A row whose ratio is ours / raw (lower is better) and whose verdict is against the bound. */
const row = (
  label: string,
  metric: string,
  unit: string,
  ours: number,
  raw: number,
  bound: number,
  boundText: string
): Row => ({
  suite: "scale",
  case: `${label} (target ≤ ${boundText} = ${bound.toFixed(1)}: ${ours <= bound ? "ok" : "ABOVE"})`,
  metric,
  unit,
  subject: ours,
  baseline: raw,
  ratio: ours / raw
})

export const suite: Suite = {
  name: "scale",
  run: async () => {
    const rows: Array<Row> = []
    for (const [kind, connections] of (["ws", "sse"] as const).flatMap((kind) =>
      SIZES.map((n) => [kind, n] as const)
    )) {
      const ours: Array<Cost> = []
      const raw: Array<Cost> = []
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate which goes first: the machine's state drifts over a run.
        if (round % 2 === 0) {
          ours.push(measure(kind, "ours", connections))
          raw.push(measure(kind, "raw", connections))
        } else {
          raw.push(measure(kind, "raw", connections))
          ours.push(measure(kind, "ours", connections))
        }
      }
      const m = (costs: ReadonlyArray<Cost>, key: keyof Cost) => median(costs.map((c) => c[key]))
      const name =
        kind === "ws"
          ? `WebSocket.make vs raw ws, ${connections.toLocaleString("en")}`
          : `Sse.make vs raw EventSource, ${connections.toLocaleString("en")}`
      const heapOurs = m(ours, "heapPerConnection") / 1024
      const heapRaw = m(raw, "heapPerConnection") / 1024
      const rssOurs = m(ours, "rssPerConnection") / 1024
      const rssRaw = m(raw, "rssPerConnection") / 1024
      const cpuOurs = m(ours, "idleCpuMsPerSecond")
      const cpuRaw = m(raw, "idleCpuMsPerSecond")
      rows.push(
        row(`${name}: heap`, "per idle connection", "KB", heapOurs, heapRaw, 1.5 * heapRaw + 4, "1.5× raw + 4 KB"),
        row(`${name}: RSS`, "per idle connection", "KB", rssOurs, rssRaw, 2 * rssRaw, "2× raw"),
        row(`${name}: CPU while idle`, "the whole process", "ms/s", cpuOurs, cpuRaw, 2 * cpuRaw, "2× raw")
      )
    }
    return rows
  }
}
