/**
 * `FsWatcher.stream` against raw chokidar (the same package, the same options the connector resolves to), on the
 * same burst: 2,000 new files written into a fresh temp directory, 100 at a time. Events/s is timed from the
 * first write to the last `Add` seen; write-to-event latency is from the call that writes a file to its `Add`
 * reaching the consumer (chokidar's own stat of every new file is most of it). Beside them, as context (the peers
 * issue): `@parcel/watcher` (native, events in batches, no stat), against the same raw chokidar baseline.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import ParcelWatcher from "@parcel/watcher"
import { FsWatcher } from "@streamemit/fs-watcher"
import { watch } from "chokidar"
import { Effect, Exit, Scope, Stream } from "effect"
import { compareRates, peerRow, percentile, type Row, type Suite, throughputRow } from "../harness.ts"

const FILES = Number(process.env.BENCH_FS_N ?? 2000)
const PACED_FILES = 500

/** How the files are written: `atOnce` concurrent writes, then a pause. */
interface Pace {
  readonly atOnce: number
  readonly pauseMs: number
}
const BURST: Pace = { atOnce: 100, pauseMs: 0 }
/** About 200 files/s: well under chokidar's capacity, so latency is the per-event cost, not a backlog. */
const PACED: Pace = { atOnce: 1, pauseMs: 5 }

interface Burst {
  readonly seconds: number
  /** Write-to-event milliseconds, one per file. */
  readonly latencies: ReadonlyArray<number>
  /** Files written that the watcher never reported (a peer's are recorded; ours and raw chokidar's fail the run). */
  readonly missed: number
}

/** Starts watching `dir`, writes the burst once the watcher is ready, and times each file's `Add`. */
const burst = async (
  dir: string,
  files: number,
  pace: Pace,
  watched: (onAdd: (path: string) => void) => Promise<() => Promise<void>>,
  strict = true
) => {
  const writtenAt = new Map<string, number>()
  const latencies: Array<number> = []
  let last = 0
  let resolveAll: () => void = () => {}
  const all = new Promise<void>((resolve) => {
    resolveAll = resolve
  })
  const stop = await watched((path) => {
    const at = performance.now()
    latencies.push(at - (writtenAt.get(path) ?? Number.NaN))
    last = at
    if (latencies.length === files) resolveAll()
  })
  const start = performance.now()
  try {
    for (let from = 0; from < files; from += pace.atOnce) {
      const writes: Array<Promise<void>> = []
      for (let i = from; i < Math.min(files, from + pace.atOnce); i++) {
        const path = join(dir, `f${i}.txt`)
        writtenAt.set(path, performance.now())
        writes.push(writeFile(path, `file ${i}\n`))
      }
      await Promise.all(writes)
      if (pace.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pace.pauseMs))
    }
    const timeout = setTimeout(() => resolveAll(), 30_000)
    await all
    clearTimeout(timeout)
  } finally {
    await stop()
  }
  if (strict && latencies.length !== files) throw new Error(`saw ${latencies.length} of ${files} Adds within 30 s`)
  return { seconds: (last - start) / 1000, latencies, missed: files - latencies.length } satisfies Burst
}

const inTempDir = async <A>(run: (dir: string) => Promise<A>): Promise<A> => {
  const dir = await mkdtemp(join(tmpdir(), "streamemit-bench-fs-"))
  try {
    return await run(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const raw = (files: number, pace: Pace): Promise<Burst> =>
  inTempDir((dir) =>
    burst(dir, files, pace, async (onAdd) => {
      // What FsWatcher.stream({ paths, initial: false }) hands chokidar.
      const watcher = watch([dir], {
        ignored: [],
        ignoreInitial: true,
        followSymlinks: false,
        awaitWriteFinish: false,
        alwaysStat: false,
        persistent: true
      })
      watcher.on("add", onAdd)
      await new Promise<void>((resolve) => watcher.once("ready", resolve))
      return () => watcher.close()
    })
  )

const parcel = (files: number, pace: Pace): Promise<Burst> =>
  inTempDir((dir) =>
    burst(
      dir,
      files,
      pace,
      async (onAdd) => {
        const subscription = await ParcelWatcher.subscribe(dir, (error, events) => {
          if (error !== null) throw error
          for (const event of events) if (event.type === "create") onAdd(event.path)
        })
        return () => subscription.unsubscribe()
      },
      false
    )
  )

const ours = (files: number, pace: Pace): Promise<Burst> =>
  inTempDir((dir) =>
    burst(dir, files, pace, async (onAdd) => {
      // The handle lives in a scope of its own, closed by stop(): a failing make rejects here instead of hanging.
      const scope = Effect.runSync(Scope.make())
      try {
        await Effect.runPromise(
          Effect.gen(function* () {
            const handle = yield* FsWatcher.make({ paths: dir, initial: false })
            yield* handle.messages.pipe(
              Stream.runForEachArray((changes) =>
                Effect.sync(() => {
                  for (const change of changes) if (change._tag === "Add") onAdd(change.path)
                })
              ),
              Effect.forkScoped({ startImmediately: true })
            )
            // Connected comes with chokidar's ready: writes before it would not be seen by either side.
            while ((yield* handle.status)._tag !== "Connected") yield* Effect.sleep("1 millis")
          }).pipe(Scope.provide(scope))
        )
      } catch (error) {
        await Effect.runPromise(Scope.close(scope, Exit.void))
        throw error
      }
      return () => Effect.runPromise(Scope.close(scope, Exit.void))
    })
  )

export const suite: Suite = {
  name: "fs-watcher",
  run: async () => {
    const latency = { ours: [] as Array<number>, raw: [] as Array<number> }
    // The first (warm-up) round of each side is not sampled.
    const rounds = { ours: 0, raw: 0 }
    const rates = await compareRates({
      items: FILES,
      rounds: 5,
      warmup: 1,
      subject: async () => {
        const result = await ours(FILES, BURST)
        if (rounds.ours++ > 0) latency.ours.push(...result.latencies)
        return result.seconds
      },
      baseline: async () => {
        const result = await raw(FILES, BURST)
        if (rounds.raw++ > 0) latency.raw.push(...result.latencies)
        return result.seconds
      }
    })
    const rows: Array<Row> = [
      throughputRow(
        "fs-watcher",
        `burst of ${FILES / 1000}k new files: FsWatcher.stream vs raw chokidar`,
        "events/s",
        rates
      )
    ]
    // The peer, as context: no target.
    // A file the peer never reports is counted and said in its row, not a failed run.
    let parcelMissed = 0
    const parcelRates = await compareRates({
      items: FILES,
      rounds: 5,
      warmup: 1,
      subject: async () => {
        const run = await parcel(FILES, BURST)
        parcelMissed += run.missed
        return run.seconds
      },
      baseline: async () => (await raw(FILES, BURST)).seconds
    })
    rows.push(
      peerRow(
        "fs-watcher",
        `burst of ${FILES / 1000}k new files: peer @parcel/watcher vs raw chokidar (${parcelMissed} files never reported over the rounds)`,
        "events/s",
        parcelRates
      )
    )
    const paced = { ours: [] as Array<number>, raw: [] as Array<number> }
    // The peer's latency, as context: the same paced files, its missed ones counted.
    const parcelPaced = { ours: [] as Array<number>, raw: paced.raw }
    let parcelPacedMissed = 0
    for (let round = 0; round < 3; round++) {
      paced.ours.push(...(await ours(PACED_FILES, PACED)).latencies)
      paced.raw.push(...(await raw(PACED_FILES, PACED)).latencies)
      const run = await parcel(PACED_FILES, PACED)
      parcelPaced.ours.push(...run.latencies)
      parcelPacedMissed += run.missed
    }
    const latencyRows = (label: string, samples: typeof latency, who = "") => {
      const sorted = { ours: samples.ours.sort((a, b) => a - b), raw: samples.raw.sort((a, b) => a - b) }
      for (const [name, p] of [
        ["p50", 0.5],
        ["p99", 0.99]
      ] as const) {
        const subject = percentile(sorted.ours, p)
        const baseline = percentile(sorted.raw, p)
        rows.push({
          suite: "fs-watcher",
          case: `write-to-event latency ${name}${who}, ${label} (added ${(subject - baseline).toFixed(1)} ms)`,
          metric: "latency",
          unit: "ms",
          subject,
          baseline,
          ratio: baseline / subject
        })
      }
    }
    latencyRows("same bursts", latency)
    latencyRows(`${PACED_FILES} files at ~200/s`, paced)
    latencyRows(
      `${PACED_FILES} files at ~200/s (${parcelPacedMissed} never reported)`,
      parcelPaced,
      ", peer @parcel/watcher"
    )
    return rows
  }
}
