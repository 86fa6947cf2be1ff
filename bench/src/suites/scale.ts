/**
 * What a quiet source costs when a service holds many: idle WebSocket and SSE connections, 1,000 and 10,000 of
 * them, each measurement in a fresh process (`../scale/idle.ts`, servers in a child process so only the clients'
 * heap, RSS and file descriptors are counted), raw
 * library and connector alternating, the median of the rounds. Targets (the scale issue): heap per connection
 * ≤ 1.5× raw + 4 KB, RSS ≤ 2× raw, idle CPU ≤ 2× raw (heartbeats included on our side). Then one connection on many
 * channels (pg-listen: 1,000 and 10,000; redis-pubsub: 10,000 and 100,000 with 1 % as many patterns) against the raw
 * client doing the same (`../scale/subscriptions.ts`), and a watcher over 10,000 and 100,000 files against raw
 * chokidar (`../scale/tree.ts`): no target, the ratio and how it grows. Last, the tap with 1,000 WebSocket sources
 * (`../scale/tap.ts`). `BENCH_SCALE_PARTS` picks the parts.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { Row, Suite } from "../harness.ts"

const ROUNDS = Number(process.env.BENCH_SCALE_ROUNDS ?? 3)
/** Connection counts per kind: 1,000 and 10,000 (the servers run in a process of their own, with their own fds). */
const SIZES = (process.env.BENCH_SCALE_SIZES ?? "1000,10000").split(",").map(Number)
const script = fileURLToPath(new URL("../scale/idle.ts", import.meta.url))
/** Which parts run: `BENCH_SCALE_PARTS=pg,redis` (default all: ws, sse, pg, redis, fs, tap). */
const PARTS = (process.env.BENCH_SCALE_PARTS ?? "ws,sse,pg,redis,fs,tap").split(",")

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
    for (const [kind, connections] of (["ws", "sse"] as const)
      .filter((kind) => PARTS.includes(kind))
      .flatMap((kind) => SIZES.map((n) => [kind, n] as const))) {
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
    if (PARTS.includes("pg")) rows.push(...subscriptionRows("pg", [1_000, 10_000]))
    if (PARTS.includes("redis")) rows.push(...subscriptionRows("redis", [10_000, 100_000]))
    if (PARTS.includes("fs")) rows.push(...treeRows([10_000, 100_000]))
    if (PARTS.includes("tap")) rows.push(...tapRows(1_000, 8))
    return rows
  }
}

/** A comparison row without a target (the issue asks for these against the raw library, with no bound). */
const plain = (label: string, metric: string, unit: string, ours: number, raw: number): Row => ({
  suite: "scale",
  case: label,
  metric,
  unit,
  subject: ours,
  baseline: raw,
  ratio: ours / raw
})

/** Runs `script` with `args` in a fresh process, alternating ours and raw over the rounds; medians per field. */
const paired = <K extends string>(
  scriptPath: string,
  args: (mode: "raw" | "ours") => ReadonlyArray<string>,
  keys: ReadonlyArray<K>
): { readonly ours: Record<K, number>; readonly raw: Record<K, number> } => {
  const run = (mode: "raw" | "ours"): Record<K, number> =>
    JSON.parse(
      execFileSync(process.execPath, ["--expose-gc", scriptPath, ...args(mode)], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
        timeout: 300_000
      }).trim()
    )
  const ours: Array<Record<K, number>> = []
  const raw: Array<Record<K, number>> = []
  for (let round = 0; round < ROUNDS; round++) {
    if (round % 2 === 0) {
      ours.push(run("ours"))
      raw.push(run("raw"))
    } else {
      raw.push(run("raw"))
      ours.push(run("ours"))
    }
  }
  const medians = (samples: ReadonlyArray<Record<K, number>>) =>
    Object.fromEntries(keys.map((key) => [key, median(samples.map((sample) => sample[key]))])) as Record<K, number>
  return { ours: medians(ours), raw: medians(raw) }
}

const subscriptionsScript = fileURLToPath(new URL("../scale/subscriptions.ts", import.meta.url))

/** One connection on many channels: subscribe, resubscribe after the server kills it, heap. */
const subscriptionRows = (kind: "pg" | "redis", sizes: ReadonlyArray<number>): Array<Row> =>
  sizes.flatMap((n) => {
    const { ours, raw } = paired(subscriptionsScript, (mode) => [kind, mode, String(n)], [
      "subscribeMs",
      "resubscribeMs",
      "heapBytes"
    ] as const)
    const name =
      kind === "pg"
        ? `PgListen vs raw pg, ${n.toLocaleString("en")} channels`
        : `RedisPubSub vs raw ioredis, ${n.toLocaleString("en")} channels + ${(n / 100).toLocaleString("en")} patterns`
    const kill = kind === "pg" ? "pg_terminate_backend" : "CLIENT KILL"
    return [
      plain(`${name}: subscribe all`, "time (lower is better)", "ms", ours.subscribeMs, raw.subscribeMs),
      plain(`${name}: all again after ${kill}`, "time (lower is better)", "ms", ours.resubscribeMs, raw.resubscribeMs),
      plain(`${name}: heap held`, "after GC (lower is better)", "MB", ours.heapBytes / 1e6, raw.heapBytes / 1e6)
    ]
  })

const treeScript = fileURLToPath(new URL("../scale/tree.ts", import.meta.url))

/** A watcher over a tree of `files` files (directories of 100), built once per size. */
const treeRows = (sizes: ReadonlyArray<number>): Array<Row> =>
  sizes.flatMap((files) => {
    const root = mkdtempSync(join(tmpdir(), "streamemit-scale-tree-"))
    try {
      for (let d = 0; d < files / 100; d++) {
        const dir = join(root, `d${d}`)
        mkdirSync(dir)
        for (let f = 0; f < 100; f++) writeFileSync(join(dir, `f${f}`), "")
      }
      const { ours, raw } = paired(treeScript, (mode) => [mode, root, String(files)], ["readyMs", "heapBytes"] as const)
      const name = `FsWatcher vs raw chokidar, ${files.toLocaleString("en")} files`
      return [
        plain(`${name}: initial scan delivered, ready`, "time (lower is better)", "ms", ours.readyMs, raw.readyMs),
        plain(`${name}: heap held`, "after GC (lower is better)", "MB", ours.heapBytes / 1e6, raw.heapBytes / 1e6)
      ]
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })

const tapScript = fileURLToPath(new URL("../scale/tap.ts", import.meta.url))

/** The tap with `sources` WebSocket sources, a message a second each, for `seconds` (one run). */
const tapRows = (sources: number, seconds: number): Array<Row> => {
  const result: {
    readonly connected: number
    readonly allConnectedMs: number
    readonly lines: number
    readonly code: number
    readonly exitedMs: number
    readonly maxRssMb: number
  } = JSON.parse(
    execFileSync(process.execPath, [tapScript, String(sources), String(seconds)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      timeout: 120_000
    }).trim()
  )
  const name = `tap, ${sources.toLocaleString("en")} WebSocket sources for ${seconds} s (exit ${result.code}, max RSS ${result.maxRssMb.toFixed(0)} MB, ${result.connected} connected)`
  return [
    plain(`${name}: last source connected, from launch`, "time vs the run", "s", result.allConnectedMs / 1000, seconds),
    plain(`${name}: exited, from launch`, "time vs the run", "s", result.exitedMs / 1000, seconds),
    {
      suite: "scale",
      case: `${name}: lines written vs one a second per source`,
      metric: "messages (higher is better)",
      unit: "lines",
      subject: result.lines,
      baseline: sources * seconds,
      ratio: result.lines / (sources * seconds)
    }
  ]
}
