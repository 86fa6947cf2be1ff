/**
 * `RedisStreams.consume` + `Delivery.process` against a raw ioredis loop of `XREADGROUP COUNT 100` and one `XACK`
 * of the batch's ids, against the local Redis (`REDIS_URL`): each round its own stream, preloaded with the same
 * entries (not timed), then timed from the first read to the last acknowledgement (XPENDING empty). The raw loop
 * is the hand-written consumer a user would otherwise keep: sequential, one round trip for the read and one for
 * the ack per batch.
 */
import { spawn } from "node:child_process"
import { Delivery } from "@streamemit/core"
import { RedisStreams } from "@streamemit/redis-streams"
import { Effect, Fiber, Stream } from "effect"
import { Redis } from "ioredis"
import { compareRates, type Row, type Suite, throughputRow } from "../harness.ts"

const ENTRIES = Number(process.env.BENCH_REDIS_STREAMS_N ?? 100_000)
const BATCH = 100
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const SCALE_ENTRIES = Number(process.env.BENCH_REDIS_STREAMS_SCALE_N ?? 2000)
const WORK_MS = 1

/**
 * Scale-out: `n` consumer processes of one group, each working 1 ms (an I/O wait) per entry, one at a time. The
 * processes start and join first; then the entries are added, and the time runs until every entry is acknowledged.
 */
const scaleOut = async (admin: Redis, n: number, round: number): Promise<number> => {
  const stream = `bench:streams:scale:${process.pid}:${n}:${round}`
  await admin.xgroup("CREATE", stream, "g", "$", "MKSTREAM")
  const script = new URL("../scale/streams-consumer.ts", import.meta.url).pathname
  const children = Array.from({ length: n }, (_, i) =>
    spawn(process.execPath, [script, REDIS_URL, stream, `c${i}`, String(WORK_MS)], {
      stdio: ["ignore", "pipe", "inherit"]
    })
  )
  try {
    await Promise.all(
      children.map((child) => new Promise<void>((resolve) => child.stdout!.once("data", () => resolve())))
    )
    const start = performance.now()
    for (let sent = 0; sent < SCALE_ENTRIES; sent += 500) {
      const pipeline = admin.pipeline()
      for (let i = 0; i < 500; i++) pipeline.xadd(stream, "*", "n", String(sent + i))
      await pipeline.exec()
    }
    for (;;) {
      const [group] = (await admin.xinfo("GROUPS", stream)) as Array<Array<string | number>>
      const info = new Map<string, string | number>()
      for (let i = 0; i + 1 < group!.length; i += 2) info.set(String(group![i]), group![i + 1]!)
      if (Number(info.get("entries-read")) >= SCALE_ENTRIES && Number(info.get("pending")) === 0) break
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    return SCALE_ENTRIES / ((performance.now() - start) / 1000)
  } finally {
    for (const child of children) child.kill("SIGKILL")
    await admin.del(stream)
  }
}

const LATENCY_RATE = 500
const LATENCY_ENTRIES = 1500

/** The samples the consumer processes pushed to `key` (with `STATS_KEY`): every latency, and the heap each time. */
const samples = async (admin: Redis, key: string) => {
  const list = (await admin.lrange(key, 0, -1)).map(
    (line) => JSON.parse(line) as { readonly latencies: Array<number>; readonly heap: number }
  )
  return { latencies: list.flatMap((s) => s.latencies), heaps: list.map((s) => s.heap) }
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

/**
 * End-to-end latency: `n` consumer processes, entries added at a steady 500/s (below what one process works
 * through, so that the figure is the path's, not a backlog's), from `XADD` to the end of each entry's work.
 */
const latency = async (admin: Redis, n: number) => {
  const stream = `bench:streams:latency:${process.pid}:${n}`
  const statsKey = `${stream}:stats`
  await admin.xgroup("CREATE", stream, "g", "$", "MKSTREAM")
  const script = new URL("../scale/streams-consumer.ts", import.meta.url).pathname
  const children = Array.from({ length: n }, (_, i) =>
    spawn(process.execPath, [script, REDIS_URL, stream, `c${i}`, String(WORK_MS)], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, STATS_KEY: statsKey }
    })
  )
  try {
    await Promise.all(
      children.map((child) => new Promise<void>((resolve) => child.stdout!.once("data", () => resolve())))
    )
    const start = performance.now()
    for (let sent = 0; sent < LATENCY_ENTRIES; sent += 5) {
      const pipeline = admin.pipeline()
      for (let i = 0; i < 5; i++) pipeline.xadd(stream, "*", "n", String(sent + i))
      await pipeline.exec()
      const due = start + ((sent + 5) / LATENCY_RATE) * 1000
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())))
    }
    for (;;) {
      const [group] = (await admin.xinfo("GROUPS", stream)) as Array<Array<string | number>>
      const info = new Map<string, string | number>()
      for (let i = 0; i + 1 < group!.length; i += 2) info.set(String(group![i]), group![i + 1]!)
      if (Number(info.get("entries-read")) >= LATENCY_ENTRIES && Number(info.get("pending")) === 0) break
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
    const sorted = (await samples(admin, statsKey)).latencies.sort((a, b) => a - b)
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), count: sorted.length }
  } finally {
    for (const child of children) child.kill("SIGKILL")
    await admin.del(stream, statsKey)
  }
}

/**
 * Memory: one consumer process (`maxInFlight` 20) works through a backlog of 50,000 entries. Its heap while it does
 * (after a collection, every 100 ms) against its heap when idle before: bounded by what it holds (`maxInFlight`),
 * not by the backlog.
 */
const memory = async (admin: Redis) => {
  const stream = `bench:streams:memory:${process.pid}`
  const statsKey = `${stream}:stats`
  const backlog = 50_000
  await admin.xgroup("CREATE", stream, "g", "$", "MKSTREAM")
  const script = new URL("../scale/streams-consumer.ts", import.meta.url).pathname
  const child = spawn(process.execPath, ["--expose-gc", script, REDIS_URL, stream, "c0", "0"], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, STATS_KEY: statsKey }
  })
  try {
    await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()))
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const idle = (await samples(admin, statsKey)).heaps
    await admin.del(statsKey)
    for (let sent = 0; sent < backlog; sent += 1000) {
      const pipeline = admin.pipeline()
      for (let i = 0; i < 1000; i++) pipeline.xadd(stream, "*", "payload", "x".repeat(100))
      await pipeline.exec()
    }
    for (;;) {
      const [group] = (await admin.xinfo("GROUPS", stream)) as Array<Array<string | number>>
      const info = new Map<string, string | number>()
      for (let i = 0; i + 1 < group!.length; i += 2) info.set(String(group![i]), group![i + 1]!)
      if (Number(info.get("entries-read")) >= backlog && Number(info.get("pending")) === 0) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const busy = (await samples(admin, statsKey)).heaps
    return { idle: Math.max(...idle), busy: Math.max(...busy), backlog }
  } finally {
    child.kill("SIGKILL")
    await admin.del(stream, statsKey)
  }
}

/**
 * The relay against raw pipelined `XADD`: the same 100k items in chunks of 1,000, one pipeline per chunk.
 */
const relayRates = async (admin: Redis) => {
  const items = Array.from({ length: ENTRIES }, (_, i) => `{"n":${i},"payload":"${"x".repeat(80)}"}`)
  const chunks: Array<Array<string>> = []
  for (let i = 0; i < items.length; i += 1000) chunks.push(items.slice(i, i + 1000))
  let round = 0
  return compareRates({
    items: ENTRIES,
    rounds: 5,
    warmup: 1,
    baseline: async () => {
      const stream = `bench:streams:relay-raw:${process.pid}:${++round}`
      const client = new Redis(REDIS_URL)
      await client.ping()
      const start = performance.now()
      for (const chunk of chunks) {
        const pipeline = client.pipeline()
        for (const item of chunk) pipeline.xadd(stream, "*", "data", item)
        await pipeline.exec()
      }
      const seconds = (performance.now() - start) / 1000
      client.disconnect()
      if ((await admin.xlen(stream)) !== ENTRIES) throw new Error("raw relay: entries missing")
      await admin.del(stream)
      return seconds
    },
    subject: async () => {
      const stream = `bench:streams:relay-se:${process.pid}:${++round}`
      const seconds = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const sink = RedisStreams.relay<string>({ connection: REDIS_URL, stream })
            const source = Stream.fromIterable(chunks).pipe(Stream.flatMap((chunk) => Stream.fromArray(chunk)))
            const start = performance.now()
            yield* Stream.run(source, sink)
            return (performance.now() - start) / 1000
          })
        )
      )
      if ((await admin.xlen(stream)) !== ENTRIES) throw new Error("relay: entries missing")
      await admin.del(stream)
      return seconds
    }
  })
}

const CLAIM_AFTER_MS = 1000

/**
 * Crash: 4 consumer processes share 4,000 entries; one is killed with -9 mid-run. Lost must be 0 (else the suite
 * fails); duplicates are what it had processed but not acknowledged; recovery is the time from the kill until
 * every entry it held is acknowledged by another (target: claimAfter + 1 s).
 */
const crash = async (admin: Redis) => {
  const total = 4000
  const stream = `bench:streams:crash:${process.pid}`
  const results = `${stream}:results`
  await admin.xgroup("CREATE", stream, "g", "$", "MKSTREAM")
  const script = new URL("../scale/streams-consumer.ts", import.meta.url).pathname
  const children = Array.from({ length: 4 }, (_, i) =>
    spawn(process.execPath, [script, REDIS_URL, stream, `c${i}`, String(WORK_MS), results], {
      stdio: ["ignore", "pipe", "inherit"]
    })
  )
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
  try {
    await Promise.all(
      children.map((child) => new Promise<void>((resolve) => child.stdout!.once("data", () => resolve())))
    )
    for (let sent = 0; sent < total; sent += 500) {
      const pipeline = admin.pipeline()
      for (let i = 0; i < 500; i++) pipeline.xadd(stream, "*", "n", String(sent + i))
      await pipeline.exec()
    }
    while ((await admin.llen(results)) < total / 4) await sleep(5)
    children[0]!.kill("SIGKILL")
    const killedAt = performance.now()
    const held = ((await admin.xpending(stream, "g", "-", "+", 1000, "c0")) as Array<[string]>).map(([id]) => id)
    for (;;) {
      const still = (await admin.xpending(stream, "g", "-", "+", 1000, "c0")) as Array<[string]>
      if (still.length === 0) break
      await sleep(5)
    }
    const recoveredMs = performance.now() - killedAt
    for (;;) {
      const pending = Number(((await admin.xpending(stream, "g")) as [number])[0])
      if (pending === 0 && (await admin.llen(results)) >= total) break
      await sleep(5)
    }
    const lines = await admin.lrange(results, 0, -1)
    const unique = new Set(lines.map((line) => line.slice(line.indexOf(":") + 1)))
    const lost = total - unique.size
    if (lost > 0) throw new Error(`redis-streams crash: ${lost} entries lost`)
    return { held: held.length, duplicates: lines.length - unique.size, recoveredMs }
  } finally {
    for (const child of children) child.kill("SIGKILL")
    await admin.del(stream, results)
  }
}

export const suite: Suite = {
  name: "redis-streams",
  run: async () => {
    const admin = new Redis(REDIS_URL)
    const payload = "x".repeat(100)
    let round = 0
    const prepare = async (label: string) => {
      const stream = `bench:streams:${label}:${process.pid}:${++round}`
      for (let sent = 0; sent < ENTRIES; sent += 1000) {
        const pipeline = admin.pipeline()
        for (let i = 0; i < 1000; i++) pipeline.xadd(stream, "*", "payload", payload)
        await pipeline.exec()
      }
      await admin.xgroup("CREATE", stream, "g", "0")
      return stream
    }
    const allAcked = async (stream: string) => Number(((await admin.xpending(stream, "g")) as [number])[0]) === 0
    try {
      const rates = await compareRates({
        items: ENTRIES,
        rounds: 5,
        warmup: 1,
        baseline: async () => {
          const stream = await prepare("raw")
          const client = new Redis(REDIS_URL)
          await client.ping()
          const start = performance.now()
          let seen = 0
          while (seen < ENTRIES) {
            const reply = (await client.xreadgroup(
              "GROUP",
              "g",
              "raw",
              "COUNT",
              BATCH,
              "STREAMS",
              stream,
              ">"
            )) as Array<[string, Array<[string, Array<string>]>]>
            const entries = reply[0]![1]
            seen += entries.length
            await client.xack(stream, "g", ...entries.map(([id]) => id))
          }
          const seconds = (performance.now() - start) / 1000
          if (!(await allAcked(stream))) throw new Error("raw: entries left pending")
          client.disconnect()
          await admin.del(stream)
          return seconds
        },
        subject: async () => {
          const stream = await prepare("se")
          const seconds = await Effect.runPromise(
            Effect.scoped(
              Effect.gen(function* () {
                const handle = yield* RedisStreams.make({
                  connection: REDIS_URL,
                  stream,
                  group: "g",
                  consumer: "se",
                  batch: BATCH,
                  reconnect: false
                })
                // Timed from a live connection, as the raw loop is.
                yield* handle.awaitConnection
                const start = performance.now()
                let seen = 0
                const worker = yield* Delivery.process(handle.messages, () => Effect.sync(() => seen++)).pipe(
                  Effect.forkChild({ startImmediately: true })
                )
                while (seen < ENTRIES || !(yield* Effect.promise(() => allAcked(stream)))) {
                  yield* Effect.sleep("1 millis")
                }
                const seconds = (performance.now() - start) / 1000
                yield* Fiber.interrupt(worker)
                return seconds
              })
            )
          )
          await admin.del(stream)
          return seconds
        }
      })
      const rows: Array<Row> = [
        throughputRow(
          "redis-streams",
          `${ENTRIES / 1000}k × 100 B entries: consume + Delivery.process vs XREADGROUP/XACK loop (COUNT ${BATCH})`,
          "entries/s",
          rates
        )
      ]
      // Scale-out: the rate of n processes against n times the rate of one (median of 3 rounds each).
      const median = (xs: Array<number>) => xs.sort((a, b) => a - b)[xs.length >> 1]!
      const rateOf = new Map<number, number>()
      for (const n of [1, 2, 4]) {
        const rates: Array<number> = []
        for (let r = 0; r < 3; r++) rates.push(await scaleOut(admin, n, r))
        rateOf.set(n, median(rates))
      }
      for (const n of [2, 4]) {
        const linear = rateOf.get(n)! / (n * rateOf.get(1)!)
        rows.push({
          suite: "redis-streams",
          case: `scale-out: ${n} consumer processes vs ${n} × one, ${WORK_MS} ms work per entry, ${SCALE_ENTRIES} entries`,
          metric: "scale-out",
          unit: "entries/s",
          subject: rateOf.get(n)!,
          baseline: n * rateOf.get(1)!,
          ratio: linear,
          target: 0.85
        })
      }
      for (const n of [1, 2, 4]) {
        const measured = await latency(admin, n)
        rows.push({
          suite: "redis-streams",
          case: `latency: ${n} consumer process${n > 1 ? "es" : ""}, ${LATENCY_RATE} entries/s, ${WORK_MS} ms work, ${measured.count} entries: p99 (ms) vs p50`,
          metric: "end-to-end latency, p99 vs p50",
          unit: "ms",
          subject: measured.p99,
          baseline: measured.p50,
          ratio: measured.p50 / measured.p99
        })
      }
      const relayed = await relayRates(admin)
      rows.push(
        throughputRow(
          "redis-streams",
          `${ENTRIES / 1000}k × 100 B items: relay (Sink) vs pipelined XADD, chunks of 1,000`,
          "entries/s",
          relayed
        )
      )
      const held = await memory(admin)
      rows.push({
        suite: "redis-streams",
        case: `memory: one consumer (maxInFlight 20) working through a backlog of ${held.backlog / 1000}k entries: heap peak vs idle (MB)`,
        metric: "heap, busy vs idle",
        unit: "MB",
        subject: held.busy / 1e6,
        baseline: held.idle / 1e6,
        ratio: held.idle / held.busy
      })
      const crashed = await crash(admin)
      rows.push({
        suite: "redis-streams",
        case: `crash: kill -9 one of 4 consumers holding ${crashed.held} entries: lost 0, ${crashed.duplicates} processed twice (maxInFlight 20)`,
        metric: "recovery, claimAfter + 1 s vs",
        unit: "ms",
        subject: crashed.recoveredMs,
        baseline: CLAIM_AFTER_MS + 1000,
        ratio: (CLAIM_AFTER_MS + 1000) / crashed.recoveredMs,
        target: 1
      })
      return rows
    } finally {
      admin.disconnect()
    }
  }
}
