/**
 * Measuring helpers shared by every suite: alternate subject and baseline rounds in one process, take medians,
 * report ratios. The cost of a connector is its ratio to what it wraps, not an absolute number.
 */
import { once } from "node:events"
import { Worker } from "node:worker_threads"
import type { Connector } from "@streamemit/core"
import { Effect, type Scope, Stream } from "effect"

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
}): Promise<{ readonly subject: number; readonly baseline: number; readonly ratio: number }> => {
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
  if (process.env.BENCH_VERBOSE === "1") {
    const rounds = subject.map((rate, i) => `${format(rate)}/${format(baseline[i])}=${(rate / baseline[i]).toFixed(2)}`)
    console.error(`  rounds (subject/baseline): ${rounds.join("  ")}`)
  }
  // The ratio is the median of each round's own ratio: a round's two runs are back to back, so a slow spell of
  // the machine (GC of the other side, a neighbour process) moves both and cancels out.
  return {
    subject: median(subject),
    baseline: median(baseline),
    ratio: median(subject.map((rate, i) => rate / baseline[i]))
  }
}

/** The throughput row of a `compareRates` result (target: the connector's ratio to raw, 0.85 unless said). */
export const throughputRow = (
  suite: string,
  label: string,
  unit: string,
  rates: { readonly subject: number; readonly baseline: number; readonly ratio: number },
  target = 0.85
): Row => ({ suite, case: label, metric: "throughput", unit, ...rates, target })

const format = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(2)

export const printTable = (rows: ReadonlyArray<Row>): string => {
  const header = ["suite", "case", "metric", "subject", "baseline", "ratio", "target", ""]
  const body = rows.map((row) => [
    row.suite,
    row.case,
    `${row.metric} (${row.unit})`,
    format(row.subject),
    format(row.baseline),
    `${row.ratio.toFixed(2)}×`,
    row.target === undefined ? "" : `≥ ${row.target}×`,
    row.target === undefined ? "" : row.ratio >= row.target ? "ok" : "BELOW"
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
 * Runs `use` against the benchmark's HTTP server (a worker thread, `servers/http-server.ts`) while it serves
 * `count` records of about `size` bytes per request, then stops the server however `use` ends.
 */
export const withHttpServer = async <A>(
  settings: { readonly count: number; readonly size: number; readonly format: "ndjson" | "sse" },
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
