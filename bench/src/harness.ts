/**
 * Measuring helpers shared by every suite: alternate subject and baseline rounds in one process, take medians,
 * report ratios. The cost of a connector is its ratio to what it wraps, not an absolute number.
 */
import { once } from "node:events"
import { Worker } from "node:worker_threads"
import type { Connector } from "@streamemit/core"
import { Deferred, Effect, Exit, Fiber, Scope, Stream } from "effect"

/** One line of the report. */
export interface Row {
  readonly suite: string
  readonly case: string
  readonly metric: string
  readonly unit: string
  readonly subject: number
  readonly baseline: number
  /** subject / baseline for rates; baseline / subject where lower is better. */
  readonly ratio: number
  /** 95 % confidence interval of `ratio` (bootstrap over the paired rounds), for throughput rows. */
  readonly interval?: readonly [number, number] | undefined
  readonly target?: number | undefined
}

export interface Suite {
  readonly name: string
  readonly run: () => Promise<ReadonlyArray<Row>>
}

const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** The value at quantile `p` (0–1) of an ascending array. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

const gc = (): void => (globalThis as { gc?: () => void }).gc?.()

/**
 * Items per second of `subject` and `baseline`, each run `rounds` times after `warmup` rounds, alternating so
 * that both see the same machine state.
 */
export const compareRates = async (options: {
  readonly items: number
  readonly rounds: number
  readonly warmup: number
  /** Resolves with the seconds its measured phase took, or with anything else to be timed whole. */
  readonly subject: () => Promise<unknown>
  readonly baseline: () => Promise<unknown>
}): Promise<Rates> => {
  const time = async (run: () => Promise<unknown>) => {
    gc()
    const start = process.hrtime.bigint()
    const measured = await run()
    // A run may time its own data phase (set-up and teardown excluded) and return the seconds it took.
    const seconds = typeof measured === "number" ? measured : Number(process.hrtime.bigint() - start) / 1e9
    return options.items / seconds
  }
  for (let i = 0; i < options.warmup; i++) {
    await time(options.subject)
    await time(options.baseline)
  }
  const subject: Array<number> = []
  const baseline: Array<number> = []
  for (let i = 0; i < options.rounds; i++) {
    // Alternate which goes first, so neither always runs on a warmer or colder heap.
    if (i % 2 === 0) {
      subject.push(await time(options.subject))
      baseline.push(await time(options.baseline))
    } else {
      baseline.push(await time(options.baseline))
      subject.push(await time(options.subject))
    }
  }
  const ratios = subject.map((rate, i) => rate / baseline[i])
  if (process.env.BENCH_VERBOSE === "1") {
    const rounds = ratios.map((ratio, i) => `${format(subject[i])}/${format(baseline[i])}=${ratio.toFixed(2)}`)
    console.error(`  rounds (subject/baseline): ${rounds.join("  ")}`)
  }
  return {
    subject: median(subject),
    baseline: median(baseline),
    ratio: pairedRatio(ratios),
    interval: bootstrapInterval(ratios, pairedRatio)
  }
}

/**
 * Runs `stream` until `count` items have arrived, then interrupts it; succeeds with `performance.now()` at the batch
 * that reached `count`. It counts per batch, as the raw clients count per message: `Stream.take` would add its own
 * per-element predicate call (Effect 4's `take` is a `takeUntil`), a cost of the operator and not of the connector.
 * Dies when the stream ends short of `count`.
 */
export const countTo = <A, E>(stream: Stream.Stream<A, E>, count: number): Effect.Effect<number, E> =>
  Effect.scoped(
    Effect.gen(function* () {
      const reached = yield* Deferred.make<number>()
      let received = 0
      const run = yield* Stream.runForEachArray(stream, (batch) => {
        received += batch.length
        return received >= count ? Deferred.succeed(reached, performance.now()) : Effect.void
      }).pipe(Effect.forkScoped({ startImmediately: true }))
      yield* Effect.raceFirst(Deferred.await(reached), Fiber.join(run))
      if (received < count) return yield* Effect.die(new Error(`stream ended after ${received} of ${count} items`))
      return yield* Deferred.await(reached)
    })
  )

/** What `compareRates` measured: median rates, the paired ratio and its 95 % interval. */
export interface Rates {
  readonly subject: number
  readonly baseline: number
  readonly ratio: number
  readonly interval: readonly [number, number]
}

/**
 * The ratio of paired rounds: the geometric mean of the rounds' own ratios, the highest and lowest 20 % left
 * out. A round's two runs are back to back, so a slow spell of the machine (the host's other tenants, GC of the
 * other side) moves both and cancels out; the trimming drops the rounds where it did not. Uses every middle
 * round rather than one, so it moves less between runs than the median did.
 */
export const pairedRatio = (ratios: ReadonlyArray<number>): number => {
  const logs = ratios.map(Math.log).sort((a, b) => a - b)
  const cut = Math.floor(logs.length * 0.2)
  const kept = logs.slice(cut, logs.length - cut)
  return Math.exp(kept.reduce((sum, x) => sum + x, 0) / kept.length)
}

/** 95 % percentile-bootstrap interval of `estimate` over `samples` (seeded: the same rounds give the same interval). */
export const bootstrapInterval = (
  samples: ReadonlyArray<number>,
  estimate: (samples: ReadonlyArray<number>) => number,
  resamples = 2000
): readonly [number, number] => {
  let seed = 0x2545f491
  const random = () => {
    // xorshift32: reproducible, plenty for resampling indices.
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return (seed >>> 0) / 0x100000000
  }
  const estimates: Array<number> = []
  const resample: Array<number> = new Array(samples.length)
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < samples.length; i++) resample[i] = samples[Math.floor(random() * samples.length)]
    estimates.push(estimate(resample))
  }
  estimates.sort((a, b) => a - b)
  return [percentile(estimates, 0.025), percentile(estimates, 0.975)]
}

/**
 * A target's verdict: `ok` when the whole interval clears it, `BELOW` when the whole interval misses it, and
 * `unclear` when the interval straddles it (more rounds, or a quieter machine, would decide).
 */
export const verdict = (row: Row): string => {
  if (row.target === undefined) return ""
  const [low, high] = row.interval ?? [row.ratio, row.ratio]
  return low >= row.target ? "ok" : high < row.target ? "BELOW" : "unclear"
}

/** The throughput row of a `compareRates` result (target: the connector's ratio to raw, 0.85 unless said). */
export const throughputRow = (suite: string, label: string, unit: string, rates: Rates, target = 0.85): Row => ({
  suite,
  case: label,
  metric: "throughput",
  unit,
  ...rates,
  target
})

/** A peer's row: context beside the raw baseline, without a target (the peers issue). */
export const peerRow = (suite: string, label: string, unit: string, rates: Rates): Row => ({
  ...throughputRow(suite, label, unit, rates),
  target: undefined
})

const format = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(2)

export const printTable = (rows: ReadonlyArray<Row>): string => {
  const header = ["suite", "case", "metric", "subject", "baseline", "ratio", "95 % interval", "target", ""]
  const body = rows.map((row) => [
    row.suite,
    row.case,
    `${row.metric} (${row.unit})`,
    format(row.subject),
    format(row.baseline),
    `${row.ratio.toFixed(2)}×`,
    row.interval === undefined ? "" : `${row.interval[0].toFixed(2)}–${row.interval[1].toFixed(2)}`,
    row.target === undefined ? "" : `≥ ${row.target}×`,
    verdict(row)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((line) => line[i].length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd()
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n")
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Memory a slow consumer lets pile up, in bytes: the live heap after a full GC at the moment `during` calls
 * `settled` (the end of the flood, before cleanup), and the peak RSS growth over the run (sampled every 50 ms).
 */
export const slowConsumerMemory = async <A>(
  during: (settled: () => void) => Promise<A>
): Promise<{ readonly heap: number; readonly rss: number; readonly result: A }> => {
  gc()
  await sleep(50)
  const before = process.memoryUsage()
  let retained = Number.NaN
  let rss = before.rss
  const sample = () => {
    rss = Math.max(rss, process.memoryUsage().rss)
  }
  const sampler = setInterval(sample, 50)
  try {
    const result = await during(() => {
      sample()
      gc()
      retained = process.memoryUsage().heapUsed - before.heapUsed
    })
    if (Number.isNaN(retained)) throw new Error("slowConsumerMemory: the run never called settled()")
    return { heap: retained, rss: rss - before.rss, result }
  } finally {
    clearInterval(sampler)
  }
}

/** Heap and RSS rows of a slow-consumer run: the ratio is how many times less ours grew (floored at 1 MB). */
export const memoryRows = (
  suite: string,
  label: string,
  ours: { readonly heap: number; readonly rss: number },
  raw: { readonly heap: number; readonly rss: number }
): ReadonlyArray<Row> =>
  (["heap", "rss"] as const).map((kind) => ({
    suite,
    case: kind === "heap" ? `live heap at the end of the flood, ${label}` : "peak RSS growth, same run",
    metric: "memory",
    unit: "MB",
    subject: ours[kind] / 1e6,
    baseline: raw[kind] / 1e6,
    ratio: Math.max(1e6, raw[kind]) / Math.max(1e6, ours[kind])
  }))

/**
 * The connector side of a slow-consumer run: opens `make`'s handle, waits until it is connected, consumes one
 * message per millisecond in the background, runs `flood`, then calls `settled` (before the scope closes).
 * Resolves with what `flood` sent and the handle's final stats.
 */
export const connectorUnderFlood = <E>(
  make: Effect.Effect<Connector.Handle<unknown, unknown>, E, Scope.Scope>,
  flood: () => Promise<number>,
  settled: () => void
): Promise<{ readonly sent: number; readonly stats: Connector.Stats }> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const handle = yield* make
        while ((yield* handle.status)._tag !== "Connected") yield* Effect.sleep("1 millis")
        yield* handle.messages.pipe(
          Stream.runForEach(() => Effect.sleep("1 millis")),
          Effect.forkScoped({ startImmediately: true })
        )
        const sent = yield* Effect.promise(flood)
        settled()
        return { sent, stats: yield* handle.stats }
      })
    )
  )

/** A consumer that takes one item per millisecond, from a plain array queue (the raw clients' side). */
export const slowArrayConsumer = <A>(): { readonly push: (item: A) => void; readonly stop: () => Promise<void> } => {
  const queue: Array<A> = []
  let running = true
  const consumer = (async () => {
    while (running) {
      if (queue.length > 0) queue.shift()
      await sleep(1)
    }
  })()
  return {
    push: (item) => void queue.push(item),
    stop: async () => {
      running = false
      await consumer
      // Released even if the source still holds this consumer's `push` for a while after closing.
      queue.length = 0
    }
  }
}

/**
 * A client of a latency run: starts receiving, calling `record` with each message's send time (epoch ms, as
 * `performance.timeOrigin + performance.now()` reads it), and resolves once it is ready to receive with a function
 * that resolves once it has received the round's messages and is closed.
 */
export type LatencyClient = (record: (sentAt: number) => void) => Promise<() => Promise<void>>

export interface Latency {
  readonly p50: number
  readonly p99: number
}

/**
 * Latency of every client, in turn, round after round (so that none is measured only while the process warms up):
 * `produce` sends a round's timestamped messages to the client that just became ready. One round's p99 varies a lot
 * (0.2 to 1.9 ms for raw `ws` alone), so each client's p50 and p99 are the medians of its rounds' percentiles.
 */
export const latencyRounds = async (
  clients: ReadonlyArray<readonly [string, LatencyClient]>,
  produce: () => Promise<void>,
  rounds: number
): Promise<Map<string, Latency>> => {
  const samples = new Map(clients.map(([name]) => [name, { p50: [] as Array<number>, p99: [] as Array<number> }]))
  for (let round = 0; round < rounds; round++) {
    for (const [name, client] of clients) {
      const received: Array<number> = []
      const finish = await client((sentAt) => received.push(performance.timeOrigin + performance.now() - sentAt))
      await produce()
      await finish()
      received.sort((a, b) => a - b)
      samples.get(name)!.p50.push(percentile(received, 0.5))
      samples.get(name)!.p99.push(percentile(received, 0.99))
    }
  }
  const median = (xs: Array<number>) =>
    percentile(
      [...xs].sort((a, b) => a - b),
      0.5
    )
  return new Map([...samples].map(([name, of]) => [name, { p50: median(of.p50), p99: median(of.p99) }]))
}

/**
 * Sends `count` messages at `perSecond`, those due at each millisecond tick together; `send` reads the clock itself,
 * so that a message's timestamp is when it leaves.
 */
export const atRate = async (count: number, perSecond: number, send: () => unknown): Promise<void> => {
  const perMs = perSecond / 1000
  const start = performance.now()
  let sent = 0
  while (sent < count) {
    const due = Math.min(count, Math.floor((performance.now() - start) * perMs) + 1)
    for (; sent < due; sent++) send()
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

/** A promise and the function that resolves it. */
export const deferred = (): { readonly promise: Promise<void>; readonly resolve: () => void } => {
  let resolve: () => void = () => {}
  const promise = new Promise<void>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

/** The clock a latency run's messages carry: epoch ms, shared by every thread and process of the machine. */
export const now = (): number => performance.timeOrigin + performance.now()

/** A callback client's side of a latency run: records each message's timestamp (its text), then `done` at `count`. */
export const recordUntil = (record: (sentAt: number) => void, count: number, done: () => void) => {
  let seen = 0
  return (stamp: string | undefined): void => {
    record(Number(stamp))
    if (++seen === count) done()
  }
}

/**
 * Our side of a latency run: a handle made in a scope of its own, its first `count` messages recorded by the
 * timestamp `sentAt` reads from each; ready once connected, finished once they are read and the scope is closed.
 */
export const handleLatencyClient =
  <A, E>(
    make: () => Effect.Effect<Connector.Handle<unknown, A>, E, Scope.Scope>,
    count: number,
    sentAt: (message: A) => number
  ): LatencyClient =>
  async (record) => {
    const scope = Effect.runSync(Scope.make())
    const handle = await Effect.runPromise(Scope.provide(make(), scope))
    const consumed = Effect.runFork(
      handle.messages.pipe(
        Stream.take(count),
        Stream.runForEach((message) => Effect.sync(() => record(sentAt(message))))
      )
    )
    await Effect.runPromise(handle.awaitConnection)
    return async () => {
      await Effect.runPromise(Fiber.join(consumed))
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }

/**
 * The rows of a latency run: ours against raw (with a target at p99 when given), then each peer against raw.
 * `label` says the rate and the rounds.
 */
export const latencyRows = (
  suite: string,
  label: string,
  results: Map<string, Latency>,
  names: { readonly raw: string; readonly ours: string },
  p99Target?: string
): Array<Row> => {
  const raw = results.get(names.raw)!
  const rows: Array<Row> = []
  for (const p of ["p50", "p99"] as const) {
    for (const [name, measured] of results) {
      if (name === names.raw) continue
      const who = name === names.ours ? "" : `, peer ${name}`
      const target = name === names.ours && p === "p99" && p99Target !== undefined ? `, target ${p99Target}` : ""
      rows.push({
        suite,
        case: `latency ${p} ${label}${who} (added ${(measured[p] - raw[p]).toFixed(3)} ms${target})`,
        metric: "latency",
        unit: "ms",
        subject: measured[p],
        baseline: raw[p],
        ratio: raw[p] / measured[p]
      })
    }
  }
  return rows
}

/**
 * Runs `use` against the benchmark's HTTP server (a worker thread, `servers/http-server.ts`) while it serves
 * `count` records of about `size` bytes per request, then stops the server however `use` ends.
 */
export const withHttpServer = async <A>(
  settings: {
    readonly count: number
    readonly size: number
    readonly format: "ndjson" | "sse"
    /** SSE only: timestamped events at this rate instead (see `servers/http-server.ts`). */
    readonly perSecond?: number
  },
  use: (origin: string) => Promise<A>
): Promise<A> => {
  const worker = new Worker(new URL("./servers/http-server.ts", import.meta.url))
  // A server that failed to start has nothing to close: its error rejects here.
  const [listening] = (await once(worker, "message")) as [{ port: number }]
  try {
    worker.postMessage({ cmd: "set", ...settings })
    await once(worker, "message")
    return await use(`http://127.0.0.1:${listening.port}`)
  } finally {
    const closed = once(worker, "message")
    worker.postMessage({ cmd: "close" })
    await closed
    await worker.terminate()
  }
}
