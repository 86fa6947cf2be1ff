/**
 * A file-system watcher as a scoped, bounded stream of tagged changes, driving `chokidar`: glob patterns in
 * `ignored` (chokidar 4+ dropped them) with picomatch, missing roots as `Config` errors, `EMFILE`/`ENOSPC` with a
 * hint, and — the default overflow — coalescing by path while the consumer is behind, so memory is bounded by the
 * number of distinct paths and the final state of every path arrives. Lifecycle and metrics are core's; a watcher
 * has no reconnect.
 *
 * Over 500 lines on purpose: the driver (watch, coalesce while paused, rescan) is one connection's story and the
 * options are documented here; the pure parts (coalescing, reconciling a rescan, the snapshot and its journal,
 * the inotify overflow) are in `internal/`.
 *
 * @since 0.1.0
 */
import type * as Fs from "node:fs"
import * as FsPromises from "node:fs/promises"
import * as Path from "node:path"
import {
  Checkpoint,
  Connector,
  ConnectorError,
  type Delivery,
  type Driver,
  Lifecycle,
  type Overflow
} from "@streamemit/core"
import { type ChokidarOptions, watch } from "chokidar"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import picomatch from "picomatch"
import { Coalescer, type Kind, kindOf } from "./internal/coalescer.ts"
import { inotifyQueue, maxQueuedEvents, onRawEvent } from "./internal/inotify.ts"
import { Reconciler } from "./internal/reconcile.ts"
import { type Known, knownOf, readSnapshot, type Snapshot, SnapshotKeeper } from "./internal/snapshot.ts"

const connector = "fs-watcher"

/**
 * What happened to a path. `initial` marks the `Add`/`AddDir` of the initial scan; `stats` is there when asked
 * (and always with a snapshot); `reconciled` marks a change found by comparing the disk with what was known.
 *
 * @since 0.1.0
 * @category models
 */
export type Change = (
  | { readonly _tag: "Add"; readonly path: string; readonly initial: boolean; readonly stats?: Fs.Stats | undefined }
  | { readonly _tag: "Change"; readonly path: string; readonly stats?: Fs.Stats | undefined }
  | { readonly _tag: "Unlink"; readonly path: string }
  | { readonly _tag: "AddDir"; readonly path: string; readonly initial: boolean; readonly stats?: Fs.Stats | undefined }
  | { readonly _tag: "UnlinkDir"; readonly path: string }
) & {
  /**
   * Found by comparing the disk with what was known — after lost events, or on start from a snapshot — rather
   * than reported by an event: what happened in between is summed up (a file changed twice is one `Change`).
   */
  readonly reconciled?: true | undefined
}

/**
 * A path to leave out: a glob (`"**\/node_modules/**"`, matched against the path relative to its watched root and
 * against the absolute path), a RegExp (tested on the absolute path) or a function.
 *
 * @since 0.1.0
 * @category options
 */
export type Ignored = string | RegExp | ((path: string, stats?: Fs.Stats) => boolean)

/**
 * The overflow options of a watcher: core's strategies, plus `"coalesce"` (the default).
 *
 * @since 0.1.0
 * @category options
 */
export interface OverflowOptions extends Omit<Overflow.Options, "strategy"> {
  readonly strategy?: Overflow.Strategy | "coalesce" | undefined
}

/**
 * @since 0.1.0
 * @category options
 */
export interface Options
  extends Omit<Connector.CommonOptions<Change>, "reconnect" | "stableAfter" | "liveness" | "overflow"> {
  /** Files or directories (watched recursively); relative paths are resolved against the process cwd. */
  readonly paths: string | ReadonlyArray<string>
  readonly ignored?: Ignored | ReadonlyArray<Ignored> | undefined
  /** Emit the initial scan as `Add`/`AddDir` with `initial: true`, before `Connected`. Default `true`. */
  readonly initial?: boolean | undefined
  /** Subdirectory levels to descend; default unlimited. */
  readonly depth?: number | undefined
  /** Default `false`: a symlink is watched as itself (retargeting it is a `Change`). */
  readonly followSymlinks?: boolean | undefined
  /** Hold `Add`/`Change` until the size is stable for `stabilityThreshold` (chunked writes). Default `false`. */
  readonly awaitWriteFinish?:
    | boolean
    | { readonly stabilityThreshold?: number; readonly pollInterval?: number }
    | undefined
  /** Stat polling instead of native watches (network filesystems, exhausted watch limits). Default `false`. */
  readonly usePolling?: boolean | undefined
  /** Polling period; default 100 ms. */
  readonly interval?: Duration.Input | undefined
  /** Merge the events of a path within this window into its final state. Default: off. */
  readonly coalesce?: Duration.Input | undefined
  /** Include `fs.Stats` with `Add`/`Change`/`AddDir`. Default `false`. */
  readonly stats?: boolean | undefined
  /** Wait for missing paths to appear instead of failing with `Config`. Default `false`. */
  readonly waitForPaths?: boolean | undefined
  /** Default `{ strategy: "coalesce", bufferSize: 4096 }`. */
  readonly overflow?: OverflowOptions | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Handle extends Connector.Handle<Watcher, Change> {}

/**
 * What `connection` shows of the running watcher.
 *
 * @since 0.1.0
 * @category models
 */
export interface Watcher {
  /** Watched directories and their entries, as chokidar reports them. */
  readonly watched: () => Record<string, Array<string>>
}

interface Resolved {
  readonly common: Connector.Resolved<Change>
  readonly roots: ReadonlyArray<string>
  readonly chokidar: ChokidarOptions
  readonly initial: boolean
  readonly coalesce: number | undefined
  readonly coalesceOnOverflow: boolean
  readonly waitForPaths: boolean
  readonly stats: boolean
}

const config = (option: string, value: unknown, expected: string) =>
  ConnectorError.config(connector, option, value, expected)

const error = (reason: ConnectorError.Reason) => ConnectorError.make(connector, reason)

/** Globs are compiled once; each is tested on the path relative to the root it is under, and on the absolute path. */
const ignoreMatcher = (
  roots: ReadonlyArray<string>,
  ignored: ReadonlyArray<Ignored>
): ((path: string, stats?: Fs.Stats) => boolean) => {
  const tests = ignored.map((matcher): ((path: string, stats?: Fs.Stats) => boolean) => {
    if (typeof matcher === "function") return matcher
    if (matcher instanceof RegExp) return (path) => matcher.test(path.split(Path.sep).join("/"))
    const glob = picomatch(matcher, { dot: true })
    return (path) => {
      const slashed = path.split(Path.sep).join("/")
      if (glob(slashed)) return true
      for (const root of roots) {
        const relative = Path.relative(root, path)
        if (relative !== "" && !relative.startsWith("..") && glob(relative.split(Path.sep).join("/"))) return true
      }
      return false
    }
  })
  return (path, stats) => tests.some((test) => test(path, stats))
}

const resolve = (options: Options): Effect.Effect<Resolved, ConnectorError.ConnectorError> =>
  Effect.gen(function* () {
    if (typeof options !== "object" || options === null) {
      return yield* Effect.fail(config("options", options, "an options object"))
    }
    const paths = typeof options.paths === "string" ? [options.paths] : options.paths
    if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === "string" && p !== "")) {
      return yield* Effect.fail(config("paths", options.paths, "a path or a non-empty array of paths"))
    }
    const roots = paths.map((p) => Path.resolve(p))
    const overflow = options.overflow ?? {}
    const coalesceOnOverflow = (overflow.strategy ?? "coalesce") === "coalesce"
    const bufferSize = overflow.bufferSize ?? 4096
    const common = yield* Connector.resolve<Change>(
      connector,
      {
        ...options,
        // A watcher is not dialed again, but for a rescan after the kernel dropped events (see inotifyQueue).
        reconnect: rescanOnOverflow,
        liveness: false,
        overflow: coalesceOnOverflow
          ? // Coalescing happens in the driver when the buffer pauses it (synchronously, at the high-water mark).
            { ...overflow, strategy: "suspend", bufferSize, hardCap: overflow.hardCap ?? bufferSize + 64 }
          : ({ ...overflow, bufferSize } as Overflow.Options)
      },
      { liveness: false }
    )
    const ignored =
      options.ignored === undefined ? [] : Array.isArray(options.ignored) ? options.ignored : [options.ignored]
    for (const matcher of ignored as ReadonlyArray<unknown>) {
      if (typeof matcher !== "string" && typeof matcher !== "function" && !(matcher instanceof RegExp)) {
        return yield* Effect.fail(config("ignored", matcher, "a glob string, a RegExp or a function"))
      }
      if (typeof matcher === "string") {
        try {
          picomatch.makeRe(matcher)
        } catch {
          return yield* Effect.fail(config("ignored", matcher, "a valid glob"))
        }
      }
    }
    const depth = options.depth
    if (depth !== undefined && (!Number.isInteger(depth) || depth < 0)) {
      return yield* Effect.fail(config("depth", depth, "a non-negative integer"))
    }
    const interval = yield* Connector.duration(connector, "interval", options.interval, 100)
    let coalesce: number | undefined
    if (options.coalesce !== undefined) {
      coalesce = Duration.toMillis(yield* Connector.duration(connector, "coalesce", options.coalesce, 0))
    }
    const awaitWriteFinish = options.awaitWriteFinish ?? false
    if (typeof awaitWriteFinish !== "boolean" && (typeof awaitWriteFinish !== "object" || awaitWriteFinish === null)) {
      return yield* Effect.fail(
        config("awaitWriteFinish", awaitWriteFinish, "a boolean or { stabilityThreshold, pollInterval }")
      )
    }
    const chokidar: ChokidarOptions = {
      ignored: ignored.length === 0 ? [] : [ignoreMatcher(roots, ignored as ReadonlyArray<Ignored>)],
      followSymlinks: options.followSymlinks ?? false,
      ...(depth === undefined ? {} : { depth }),
      ...(options.usePolling === true ? { backend: "polling", pollingInterval: Duration.toMillis(interval) } : {}),
      awaitWriteFinish: awaitWriteFinish as ChokidarOptions["awaitWriteFinish"] & {},
      alwaysStat: options.stats === true,
      persistent: true
    }
    return {
      common,
      roots,
      chokidar,
      initial: options.initial !== false,
      coalesce,
      coalesceOnOverflow,
      waitForPaths: options.waitForPaths === true,
      stats: options.stats === true
    }
  })

/** Errors by code: exhausted watch or file limits get their fix in the message. */
const watchError = (cause: unknown): ConnectorError.ConnectorError => {
  const code = (cause as { code?: string }).code
  const message = String((cause as Error).message ?? cause)
  if (code === "ENOSPC" || code === "EMFILE") {
    const hint =
      code === "ENOSPC"
        ? "the inotify watch limit is exhausted: raise fs.inotify.max_user_watches, watch less (ignored, depth), or set usePolling"
        : "the open-file limit is exhausted: raise it (ulimit -n), watch less (ignored, depth), or set usePolling"
    return error(new ConnectorError.Config({ option: "usePolling", message: `${code}: ${hint}`, cause }))
  }
  return error(
    new ConnectorError.Connect({
      message: code === undefined ? message : `${code}: ${message}`,
      cause,
      retryable: false
    })
  )
}

// -----------------------------------------------------------------------------------------------------------------
// Lost events: the kernel's inotify queue
// -----------------------------------------------------------------------------------------------------------------

const queueOverflow = (lostSince: number) =>
  error(
    new ConnectorError.Overflow({
      bufferSize: maxQueuedEvents(),
      strategy: "inotify",
      message: `the kernel's inotify queue overflowed (max_queued_events ${maxQueuedEvents()}): events since ${new Date(lostSince).toISOString()} may be lost; rescanning`,
      retryable: true
    })
  )

/** Only the inotify queue overflow is retried: a rescan. Every other error ends the stream. */
const rescanOnOverflow = Schedule.forever.pipe(
  Schedule.setInputType<ConnectorError.ConnectorError>(),
  Schedule.while(({ input }) => input.reason._tag === "Overflow")
)

/** A file changed at or after this moment may have lost its event (file-system timestamps are coarse). */
const timestampSlack = 1000

// -----------------------------------------------------------------------------------------------------------------
// The driver
// -----------------------------------------------------------------------------------------------------------------

const driver = (options: Resolved, snapshot: Snapshot | undefined): Driver.Driver<Watcher, Change> => {
  // Across connections (a rescan after lost events is a new connection): what chokidar has reported of each path
  // (from the snapshot on start), and the changes a slow consumer made us merge that it has not been given yet.
  const reported = new Map<string, Known>(snapshot?.paths)
  const uncertain = new Map<string, Kind>(snapshot?.uncertain)
  const coalescer = new Coalescer()
  /** Since when events may have been lost (set by an overflow): the rescan reports changes from there. */
  let lostSince = 0
  // chokidar reports the children of a removed directory one by one, so no subtree walk is needed here (one left
  // behind would only be reported removed by a rescan, which is true).
  const remember = (change: Change) => {
    if (change._tag === "Add" || change._tag === "AddDir") {
      reported.set(change.path, knownOf(kindOf(change), change.stats))
    } else if (change._tag === "Change") reported.set(change.path, knownOf("file", change.stats))
    else reported.delete(change.path)
  }
  let attempt = 0
  return {
    connector,
    // A start from a snapshot replays what changed while nothing watched: nothing was lost.
    delivery: () => (attempt === 1 && snapshot !== undefined ? "resumed" : "possible-loss"),
    // The initial scan's Adds come before Connected (chokidar's ready); a rescan's changes (and a start from a
    // snapshot's) come after its Gap.
    ungated: (n) => n === 1 && snapshot === undefined,
    connect: (session) =>
      Effect.gen(function* () {
        attempt = session.attempt
        const rescan = session.attempt > 1 || snapshot !== undefined
        if (!options.waitForPaths) {
          for (const root of options.roots) {
            const readable = yield* Effect.promise(() =>
              FsPromises.access(root, FsPromises.constants.R_OK).then(
                () => undefined,
                (cause: NodeJS.ErrnoException) => cause
              )
            )
            if (readable !== undefined) {
              return yield* Effect.fail(
                error(
                  new ConnectorError.Config({
                    option: "paths",
                    value: root,
                    message: `${root}: ${readable.code === "ENOENT" ? "does not exist" : `cannot be read (${readable.code})`}`,
                    cause: readable
                  })
                )
              )
            }
          }
        }
        // The initial scan is always read, to know what exists (it is delivered only with `initial`); a rescan
        // lists everything with stats, to compare modification times, and reports only the difference.
        const watcher = watch([...options.roots], {
          ...options.chokidar,
          ignoreInitial: false,
          ...(rescan ? { alwaysStat: true } : {})
        })
        yield* Effect.addFinalizer(() => Effect.promise(() => watcher.close().catch(() => {})))
        const detectsOverflow = process.platform === "linux" && options.chokidar.backend !== "polling"
        if (detectsOverflow) {
          const startedAt = Date.now()
          const onOverflow = (since: number) => {
            lostSince = Math.max(since, startedAt)
            session.fail(queueOverflow(lostSince))
          }
          watcher.on("raw", onRawEvent)
          inotifyQueue.listeners.add(onOverflow)
          yield* Effect.addFinalizer(() => Effect.sync(() => inotifyQueue.listeners.delete(onOverflow)))
        }

        let coalescing = false
        let timer: ReturnType<typeof setTimeout> | undefined
        yield* Effect.addFinalizer(() => Effect.sync(() => timer !== undefined && clearTimeout(timer)))
        let ready = false
        let windowStart: number | undefined
        // Set at `ready` while merged changes of the initial scan wait: Connected comes once they are delivered.
        let onInitialDelivered: (() => void) | undefined
        const flush = () => {
          if (timer !== undefined) clearTimeout(timer)
          timer = undefined
          windowStart = undefined
          coalescing = false
          coalescer.flush((change) => {
            session.emit(change)
            // The buffer paused us while flushing: keep the rest merged.
            return !coalescing
          })
          countMerged()
          if (onInitialDelivered !== undefined && coalescer.initialPending === 0) {
            const done = onInitialDelivered
            onInitialDelivered = undefined
            done()
          }
        }
        let countedMerged = coalescer.merged
        // Intermediate states merged away are counted as dropped (streamemit_dropped_total, stats.dropped).
        const countMerged = () => {
          session.dropped(coalescer.merged - countedMerged)
          countedMerged = coalescer.merged
        }
        if (options.coalesceOnOverflow) {
          session.flowControl({
            pause: () => {
              coalescing = true
            },
            resume: () => {
              if (options.coalesce === undefined || !ready) return flush()
              // With a coalesce window: what merged while paused goes out when the window closes.
              coalescing = false
              if (coalescer.pending.size > 0 && timer === undefined) {
                windowStart = Date.now()
                timer = setTimeout(flush, options.coalesce)
              }
            }
          })
        }
        const push = (change: Change) => {
          session.received(0)
          remember(change)
          // Merged changes still waiting go first: a path's changes never overtake each other.
          if (coalescing || coalescer.pending.size > 0 || (options.coalesce !== undefined && ready)) {
            coalescer.add(change, !ready && !rescan)
            if (!coalescing && options.coalesce !== undefined && ready) {
              // Trailing window: flushed once no event came for `coalesce`, but never held past 10 windows.
              const now = Date.now()
              windowStart ??= now
              if (timer !== undefined) clearTimeout(timer)
              timer = setTimeout(
                flush,
                Math.max(0, Math.min(options.coalesce, windowStart + 10 * options.coalesce - now))
              )
            } else if (!coalescing && timer === undefined) timer = setTimeout(flush, 0)
            return
          }
          session.emit(change)
        }
        // What survived from the last connection is delivered first (behind this one's Gap).
        if (coalescer.pending.size > 0) flush()

        // Stats only when asked for (`stats`): an item's shape must not depend on how chokidar found the file.
        const withStats = (stats: Fs.Stats | undefined) => (stats === undefined || !options.stats ? {} : { stats })
        // A rescan: the scan's entries against what was reported. Changes since `lostSince` (the drain before the
        // overflow) are reported again: a few may be reported twice, none is lost.
        const reconcile = new Reconciler(reported, uncertain, lostSince - timestampSlack, withStats, push)
        const add = (change: Change & { readonly _tag: "Add" | "AddDir" }, stats: Fs.Stats | undefined) => {
          if (ready) push(change)
          else if (rescan) reconcile.found(change, stats)
          else if (options.initial) push(change)
          else remember(change)
        }
        watcher.on("add", (path, stats) => add({ _tag: "Add", path, initial: !ready, ...withStats(stats) }, stats))
        watcher.on("addDir", (path, stats) =>
          add({ _tag: "AddDir", path, initial: !ready, ...withStats(stats) }, stats)
        )
        watcher.on("change", (path, stats) => push({ _tag: "Change", path, ...withStats(stats) }))
        watcher.on("unlink", (path) => push({ _tag: "Unlink", path }))
        watcher.on("unlinkDir", (path) => push({ _tag: "UnlinkDir", path }))
        watcher.on("error", (cause) => session.fail(watchError(cause)))
        yield* Effect.callback<void, ConnectorError.ConnectorError>((resume) => {
          // Only until ready: the watcher's own error listener (above) reports what comes later.
          const onError = (cause: unknown) => resume(Effect.fail(watchError(cause)))
          watcher.once("error", onError)
          watcher.once("ready", () => {
            watcher.off("error", onError)
            ready = true
            if (rescan) {
              reconcile.missing()
              uncertain.clear()
              return resume(Effect.void)
            }
            // The initial scan's Adds come before Connected, marked initial, even those a slow consumer made us
            // merge: Connected waits until they are delivered.
            if (coalescer.initialPending === 0) resume(Effect.void)
            else onInitialDelivered = () => resume(Effect.void)
          })
        })
        return { watched: () => watcher.getWatched() }
      })
  }
}

/**
 * Starts watching in the current Scope and returns the handle.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Handle, ConnectorError.ConnectorError, Scope.Scope> =>
  Effect.flatMap(resolve(options), (resolved) => Connector.make(driver(resolved, undefined), resolved.common))

/**
 * The changes under `paths`: watches when run, closes the watcher when done.
 *
 * @since 0.1.0
 * @category constructors
 */
export const stream = (options: Options): Stream.Stream<Change, ConnectorError.ConnectorError> =>
  Connector.stream(
    Effect.map(resolve(options), (resolved) => ({ driver: driver(resolved, undefined), options: resolved.common }))
  )

// -----------------------------------------------------------------------------------------------------------------
// Snapshots: resuming after a restart
// -----------------------------------------------------------------------------------------------------------------

/**
 * @since 0.2.0
 * @category checkpoints
 */
export interface SnapshotOptions extends Options {
  readonly snapshot: {
    /** The snapshot file (JSON, written atomically: a temporary file, flushed, renamed). */
    readonly path: string
    /** Written this often when something changed, and on a clean close. Default 10 seconds. */
    readonly every?: Duration.Input | undefined
  }
}

const readSnapshotAt = (path: string): Effect.Effect<Snapshot | undefined, ConnectorError.ConnectorError> =>
  Effect.tryPromise({
    try: () => readSnapshot(path),
    catch: (cause) =>
      error(
        new ConnectorError.Config({
          option: "snapshot.path",
          message: `snapshot ${path}: unreadable or corrupt (${(cause as Error).message}); delete it to start over`,
          cause
        })
      )
  })

/**
 * A watcher resumed across restarts: a snapshot of the tree the consumer has processed (each path's kind, and a
 * file's size, modification time and inode) is written every `snapshot.every` and on a clean close; on start, the
 * difference between the snapshot and the disk is emitted as `Add`/`Change`/`Unlink`/`AddDir`/`UnlinkDir`
 * (`reconciled: true`) after a `Gap { delivery: "resumed" }` whose downtime counts from the snapshot, then the live
 * changes. Changes are `Delivery` values: a change is in the snapshot only once it and every change before it are
 * acknowledged (`Delivery.process` does it after your work), so a crash loses none and replays at most what was
 * done since the last write. Changes carry their `stats` (what the snapshot records). A corrupt snapshot is a
 * `Config` error naming the file.
 *
 * @since 0.2.0
 * @category checkpoints
 */
export const checkpointed = (
  options: SnapshotOptions
): Effect.Effect<Checkpoint.Resumed<Handle, Change>, ConnectorError.ConnectorError, Scope.Scope> =>
  Effect.gen(function* () {
    const { snapshot: snapshotOptions, ...rest } = options
    if (typeof snapshotOptions !== "object" || snapshotOptions === null || typeof snapshotOptions.path !== "string") {
      return yield* Effect.fail(config("snapshot.path", snapshotOptions, "{ path: a file }"))
    }
    const every = yield* Connector.duration(connector, "snapshot.every", snapshotOptions.every, "10 seconds")
    const file = Path.resolve(snapshotOptions.path)
    // Stats on every change: what the snapshot keeps of a file.
    const resolved = yield* resolve({ ...rest, stats: true })
    const snapshot = yield* readSnapshotAt(file)
    const handle = yield* Connector.make(driver(resolved, snapshot), {
      ...resolved.common,
      lastSeenAt: snapshot?.savedAt
    })

    const keeper = new SnapshotKeeper(file, snapshot)
    const deliver = Checkpoint.inOrder<Change>(connector, (change) => keeper.done(change))
    let sequence = 0
    const handOut = (changes: ReadonlyArray<Change>) => {
      keeper.handOut(changes)
      return changes.map((change) => deliver(change, `${change.path}#${++sequence}`))
    }
    const write = Effect.suspend(() => {
      const written = keeper.write()
      if (written === undefined) return Effect.void
      return Effect.tryPromise({
        try: () => written,
        catch: (cause) =>
          error(
            new ConnectorError.Config({
              option: "snapshot.path",
              message: `snapshot ${file}: cannot be written (${(cause as Error).message})`,
              cause
            })
          )
      })
    })
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.andThen(
          Effect.sleep(every),
          Effect.catch(write, (cause) => Effect.logWarning(cause.message))
        )
      )
    )
    // A clean close writes what was processed.
    yield* Effect.addFinalizer(() => Effect.ignore(write))
    return {
      handle,
      // A batch in, a batch out (non-empty both).
      deliveries: Stream.mapArray(
        handle.messages,
        (changes) =>
          handOut(changes) as unknown as readonly [Delivery.Delivery<Change>, ...Array<Delivery.Delivery<Change>>]
      ),
      signals: Stream.mapArray(handle.signals, (signals) => {
        const changes: Array<Change> = []
        for (const signal of signals) if (signal._tag === "Message") changes.push(signal.message)
        const delivered = handOut(changes)
        let next = 0
        return signals.map(
          (signal): Lifecycle.Signal<Delivery.Delivery<Change>> =>
            signal._tag === "Message" ? new Lifecycle.Message({ message: delivered[next++]! }) : signal
        ) as unknown as readonly [
          Lifecycle.Signal<Delivery.Delivery<Change>>,
          ...Array<Lifecycle.Signal<Delivery.Delivery<Change>>>
        ]
      })
    }
  })
